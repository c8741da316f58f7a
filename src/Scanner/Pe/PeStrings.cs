using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// ASCII and UTF-16LE strings in every section that can hold data (where drivers keep device names, SDDL
/// strings and registry paths), executable ones included: older compilers merge read-only data into
/// <c>.text</c>, so a driver's <c>\Device\PhysicalMemory</c> or SDDL often lives there. Each string records its
/// section. Instruction streams produce short noise strings, so executable sections yield strings of at least
/// <see cref="MinLengthInCode"/> characters. <c>.reloc</c> and <c>.pdata</c> hold only tables and are skipped.
/// </summary>
/// <remarks>
/// This reads every byte of every image a string rule looks at, so it is the scan's hottest loop. Bytes are
/// classified 64 at a time with vector compares into a bit mask; a block where no run of the minimum length
/// can start is skipped with a few shifts, and runs are walked by bit counts, not byte by byte.
/// </remarks>
internal static class PeStrings
{
    public const int MinLength = 4;
    /// <summary>Shortest string taken from an executable section (code bytes make many 4-5 character runs).</summary>
    public const int MinLengthInCode = 6;
    /// <summary>Bytes read per image at most; beyond that strings are not collected (bounded work on hostile images).</summary>
    public const int MaxBytesPerImage = 32 << 20;
    public const int MaxStrings = 100_000;
    internal const int MaxStringLength = 4096;

    /// <summary>Bytes of a span the needle search reads at a time (plus <see cref="Margin"/> on each side).</summary>
    internal const int SearchChunk = 1 << 20;

    /// <summary>
    /// Bytes read before and after each chunk: more than a string's longest text (<see cref="MaxStringLength"/> UTF-16
    /// units), so the string around any occurrence that starts in the chunk lies inside the bytes read.
    /// </summary>
    private const int Margin = (MaxStringLength + 1) * 2;

    public static IReadOnlyList<StringFact> Extract(PeImage image)
    {
        var result = new List<StringFact>();
        var scratch = new List<StringFact>();
        foreach (var (section, size, min) in StringSpans(image))
        {
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                var bytes = buffer.AsSpan(0, image.ReadRva(section.Rva, buffer.AsSpan(0, size)));
                var ascii = result.Count;
                Ascii(bytes, section, min, result);
                var wide = result.Count;
                var odd = Utf16(bytes, section, min, result);
                MergeRuns(result, ascii, wide, odd, scratch);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (result.Count >= MaxStrings) break;
        }
        // RVA order (ASCII first at one RVA), deterministic whatever the passes found first. Each span's strings are
        // already in order and spans rarely come out of RVA order, so sort only when they did.
        for (var i = 1; i < result.Count; i++)
        {
            if (Compare(result[i - 1], result[i]) < 0) continue;
            result.Sort(static (a, b) => Compare(a, b));
            break;
        }
        return result.Count > MaxStrings ? result.GetRange(0, MaxStrings) : result;
    }

    /// <summary>
    /// The spans strings are taken from, in order, each with its section (placed at the span's RVA), the bytes read
    /// (within <see cref="MaxBytesPerImage"/> for the image) and its minimum string length. The one definition of
    /// which bytes hold strings, for the extraction and the needle search alike.
    /// </summary>
    private static List<(PeSection Section, int Size, int Min)> StringSpans(PeImage image)
    {
        var spans = new List<(PeSection, int, int)>();
        long budget = MaxBytesPerImage;
        // Each byte behind the image once, however many section headers map it (DistinctSpans).
        foreach (var span in image.DistinctSpans(static s => s.Name != ".reloc" && s.Name != ".pdata"))
        {
            var section = span.Section with { Rva = span.Rva }; // strings are placed relative to the span read
            var size = (int)Math.Min(span.Length, budget);
            if (size <= 0) continue;
            budget -= size;
            spans.Add((section, size, section.Executable ? MinLengthInCode : MinLength));
        }
        return spans;
    }

    /// <summary>Reads the span's bytes at <paramref name="offset"/>; returns how many were read (fewer: the data ends there).</summary>
    internal delegate int SpanReader(int offset, Span<byte> into);

    /// <summary>
    /// False only when <see cref="Extract"/> cannot return a string for which <paramref name="match"/> is true, given
    /// that every such string contains <paramref name="needle"/>. Finds the needle's bytes (ASCII and UTF-16LE, with a
    /// vectorised search), rebuilds just the string around each occurrence exactly as <see cref="Extract"/> would, and
    /// asks <paramref name="match"/>: most images have no candidate, so their strings are never extracted. A candidate
    /// that matches answers true and the caller extracts as before, so caps and order are unchanged.
    /// </summary>
    public static bool MayHave(PeImage image, StringNeedle needle, Func<StringFact, bool> match)
    {
        // Strings hold only printable ASCII and tabs; any other needle character is left to the full extraction
        // (ignore-case comparison of non-ASCII characters is not worth reasoning about here).
        if (needle.Text.Length == 0) return true;
        foreach (var c in needle.Text)
            if (!Printable(c)) return true;
        foreach (var (section, size, min) in StringSpans(image))
        {
            var rva = section.Rva;
            if (SpanHas(size, (offset, into) => image.ReadRva(rva + (uint)offset, into), section, min, needle, match)) return true;
        }
        return false;
    }

    /// <summary>
    /// <see cref="MayHave"/> over one span of <paramref name="size"/> bytes, read <paramref name="chunk"/> bytes at a
    /// time with <see cref="Margin"/> bytes on each side, so a 16 MB debug section costs a 1 MB buffer.
    /// </summary>
    internal static bool SpanHas(int size, SpanReader read, PeSection section, int min, StringNeedle needle, Func<StringFact, bool> match, int chunk = SearchChunk)
    {
        var text = needle.Text;
        var ascii = new byte[text.Length];
        var wide = new byte[text.Length * 2];
        for (var k = 0; k < text.Length; k++) ascii[k] = wide[k * 2] = (byte)text[k];
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, (long)chunk + 2 * Margin + wide.Length));
        // End (span offset) of the last run rebuilt: ASCII; UTF-16 at even and at odd offsets.
        Span<int> tried = stackalloc int[3];
        try
        {
            for (var pos = 0; pos < size; pos += chunk)
            {
                var origin = Math.Max(0, pos - Margin);
                var want = (int)Math.Min(size, (long)pos + chunk + Margin + wide.Length) - origin;
                var n = read(origin, buffer.AsSpan(0, want));
                var bytes = buffer.AsSpan(0, Math.Max(0, n));
                var to = Math.Min(pos + chunk, origin + bytes.Length) - origin;
                if (to <= pos - origin) break;
                if (needle.Ascii && Candidates(bytes, origin, pos - origin, to, ascii, utf16: false, needle, section, min, match, tried[..1])) return true;
                if (needle.Utf16 && Candidates(bytes, origin, pos - origin, to, wide, utf16: true, needle, section, min, match, tried[1..])) return true;
                if (n < want) break; // the data ends here, as it would for one read of the whole span
            }
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Whether a string <see cref="Extract"/> takes from the span, in one encoding, contains the needle at an occurrence
    /// starting in [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="bytes"/> (the span's bytes from
    /// <paramref name="origin"/>), at its start when asked, and satisfies <paramref name="match"/>. Each run of
    /// printable units is rebuilt once (<paramref name="tried"/>: span offset where the last one ended, per alignment).
    /// </summary>
    private static bool Candidates(ReadOnlySpan<byte> bytes, int origin, int from, int to, ReadOnlySpan<byte> pattern, bool utf16,
        StringNeedle needle, PeSection section, int min, Func<StringFact, bool> match, Span<int> tried)
    {
        var unit = utf16 ? 2 : 1;
        while (from < to)
        {
            var hay = bytes[from..Math.Min(bytes.Length, to + pattern.Length - 1)];
            if (hay.Length < pattern.Length) return false;
            var found = needle.IgnoreCase ? IndexOfIgnoreCase(hay, pattern) : hay.IndexOf(pattern);
            if (found < 0) return false;
            var at = from + found;
            from = at + 1;
            ref var done = ref tried[(origin + at) & (unit - 1)];
            if (origin + at < done) continue; // inside a run already rebuilt
            var start = at;
            if (needle.AtStart)
            {
                if (at >= unit && PrintableAt(bytes, at - unit, utf16)) continue;
            }
            else
            {
                while (start >= unit && PrintableAt(bytes, start - unit, utf16)) start -= unit;
            }
            var end = at;
            while (end + unit <= bytes.Length && PrintableAt(bytes, end, utf16)) end += unit;
            done = origin + end;
            // The run reaches back past the bytes read (not the span's start): it began more than MaxStringLength units
            // before this occurrence, so its string does not hold this one; one it does hold was found earlier.
            if (start < unit && origin > 0) continue;
            var length = (end - start) / unit;
            if (length < min) continue;
            // A run that goes on past the bytes read is longer than MaxStringLength units (Margin): its text is inside.
            var len = Math.Min(length, MaxStringLength);
            var value = utf16 ? Encoding.Unicode.GetString(bytes.Slice(start, len * 2)) : Encoding.ASCII.GetString(bytes.Slice(start, len));
            if (match(new StringFact(value, utf16, section.Rva + (uint)(origin + start), section.Name))) return true;
        }
        return false;
    }

    /// <summary>Printable unit at <paramref name="at"/>: as <see cref="Ascii"/> and <see cref="Utf16"/> classify it.</summary>
    private static bool PrintableAt(ReadOnlySpan<byte> bytes, int at, bool utf16) =>
        Printable(bytes[at]) && (!utf16 || bytes[at + 1] == 0);

    /// <summary>First offset of <paramref name="pattern"/> (ASCII, or ASCII with zero high bytes) ignoring ASCII letter case.</summary>
    private static int IndexOfIgnoreCase(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> pattern)
    {
        var first = pattern[0];
        var letter = char.IsAsciiLetter((char)first);
        for (var from = 0; from <= bytes.Length - pattern.Length;)
        {
            var found = letter ? bytes[from..].IndexOfAny((byte)(first | 0x20), (byte)(first & ~0x20)) : bytes[from..].IndexOf(first);
            if (found < 0) return -1;
            var at = from + found;
            if (at > bytes.Length - pattern.Length) return -1;
            if (System.Text.Ascii.EqualsIgnoreCase(bytes.Slice(at, pattern.Length), pattern)) return at;
            from = at + 1;
        }
        return -1;
    }
    private static int Compare(StringFact a, StringFact b) => a.Rva != b.Rva ? a.Rva.CompareTo(b.Rva) : a.Utf16.CompareTo(b.Utf16);

    /// <summary>Merges the three RVA-ordered runs [a, w), [w, o), [o, end) of <paramref name="list"/> in place.</summary>
    private static void MergeRuns(List<StringFact> list, int a, int w, int o, List<StringFact> scratch)
    {
        var end = list.Count;
        if ((w == a ? 1 : 0) + (o == w ? 1 : 0) + (end == o ? 1 : 0) >= 2) return; // one run or none: in order
        scratch.Clear();
        for (var i = a; i < end; i++) scratch.Add(list[i]);
        int i0 = 0, i1 = w - a, i2 = o - a, e0 = w - a, e1 = o - a, e2 = end - a, to = a;
        while (i0 < e0 || i1 < e1 || i2 < e2)
        {
            var pick = -1;
            if (i0 < e0) pick = 0;
            if (i1 < e1 && (pick < 0 || Compare(scratch[i1], scratch[i0]) < 0)) pick = 1;
            if (i2 < e2 && (pick < 0 || Compare(scratch[i2], pick == 0 ? scratch[i0] : scratch[i1]) < 0)) pick = 2;
            list[to++] = pick switch { 0 => scratch[i0++], 1 => scratch[i1++], _ => scratch[i2++] };
        }
    }

    private static bool Printable(int c) => c is >= 0x20 and < 0x7f or '\t';

    internal static void Ascii(ReadOnlySpan<byte> bytes, PeSection section, int min, List<StringFact> into)
    {
        var runs = new RunWalker(min);
        ref var start = ref MemoryMarshal.GetReference(bytes);
        int b = 0;
        for (; b + 64 <= bytes.Length; b += 64)
        {
            var m = AsciiMask(ref Unsafe.Add(ref start, b));
            runs.Block(m, b, bytes, section, into);
        }
        for (; b < bytes.Length; b++) runs.Unit(Printable(bytes[b]), b, bytes, section, into);
        runs.End(bytes.Length, bytes, section, into);
    }

    /// <summary>Appends the strings at even offsets, then those at odd offsets; returns where the odd ones start.</summary>
    internal static int Utf16(ReadOnlySpan<byte> bytes, PeSection section, int min, List<StringFact> into)
    {
        var odd = -1;
        // Two alignments: a UTF-16 string may start at an odd offset inside packed data.
        for (var phase = 0; phase < 2 && phase < bytes.Length; phase++)
        {
            if (phase == 1) odd = into.Count;
            // Units are the whole (low, high) byte pairs from this phase; a last lone byte ends any run.
            var units = MemoryMarshal.Cast<byte, ushort>(bytes[phase..]);
            var runs = new RunWalker(min) { Phase = phase, Utf16 = true };
            ref var start = ref MemoryMarshal.GetReference(units);
            int u = 0;
            for (; u + 64 <= units.Length; u += 64)
                runs.Block(Utf16Mask(ref Unsafe.Add(ref start, u)), u, bytes, section, into);
            for (; u < units.Length; u++)
            {
                var c = BitConverter.IsLittleEndian ? units[u] : (ushort)((units[u] << 8) | (units[u] >> 8));
                runs.Unit(c < 0x100 && Printable(c), u, bytes, section, into);
            }
            runs.End(units.Length, bytes, section, into);
        }
        return odd < 0 ? into.Count : odd;
    }

    /// <summary>Bit i set when byte i of the 64 is printable (0x20–0x7e or a tab).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AsciiMask(ref byte at)
    {
        ulong mask = 0;
        for (var k = 0; k < 4; k++)
        {
            var v = Vector128.LoadUnsafe(ref at, (nuint)(k * 16));
            var printable = Vector128.LessThan(v - Vector128.Create((byte)0x20), Vector128.Create((byte)0x5f)) | Vector128.Equals(v, Vector128.Create((byte)'\t'));
            mask |= (ulong)printable.ExtractMostSignificantBits() << (k * 16);
        }
        return mask;
    }

    /// <summary>Bit i set when UTF-16LE unit i of the 64 is printable ASCII (high byte 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Utf16Mask(ref ushort at)
    {
        ulong mask = 0;
        for (var k = 0; k < 8; k++)
        {
            var v = Vector128.LoadUnsafe(ref at, (nuint)(k * 8));
            if (!BitConverter.IsLittleEndian) v = (v << 8) | (v >>> 8);
            var printable = Vector128.LessThan(v - Vector128.Create((ushort)0x20), Vector128.Create((ushort)0x5f)) | Vector128.Equals(v, Vector128.Create((ushort)'\t'));
            mask |= (ulong)printable.ExtractMostSignificantBits() << (k * 8);
        }
        return mask;
    }

    /// <summary>
    /// Turns printable/unprintable units into runs and emits those of at least <c>min</c> units. Positions are
    /// units (bytes for ASCII, byte pairs for UTF-16 from <see cref="Phase"/>).
    /// </summary>
    private struct RunWalker(int min)
    {
        public int Phase;
        public bool Utf16;
        private int _start = -1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Block(ulong m, int at, ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
        {
            if (_start < 0)
            {
                // No run can start here when no bit begins min set bits (bits past the block count as set: a
                // run may go on in the next block). The common case in code and padding.
                var r = m;
                for (var k = 1; k < min && r != 0; k++) r &= (m >> k) | (ulong.MaxValue << (64 - k));
                if (r == 0) return;
            }
            else if (m == ulong.MaxValue) return; // a long string goes on
            var pos = 0;
            while (pos < 64)
            {
                if (_start >= 0)
                {
                    var rest = ~m >> pos;
                    if (rest == 0) return; // the run goes on into the next block
                    pos += BitOperations.TrailingZeroCount(rest);
                    Emit(at + pos, bytes, section, into);
                }
                else
                {
                    var rest = m >> pos;
                    if (rest == 0) return;
                    pos += BitOperations.TrailingZeroCount(rest);
                    _start = at + pos;
                }
            }
        }

        public void Unit(bool printable, int at, ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
        {
            if (printable) { if (_start < 0) _start = at; }
            else if (_start >= 0) Emit(at, bytes, section, into);
        }

        public void End(int at, ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
        {
            if (_start >= 0) Emit(at, bytes, section, into);
        }

        private void Emit(int end, ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
        {
            var start = _start;
            _start = -1;
            if (end - start < min) return;
            var len = Math.Min(end - start, MaxStringLength);
            if (Utf16)
            {
                var offset = Phase + start * 2;
                into.Add(new StringFact(Encoding.Unicode.GetString(bytes.Slice(offset, len * 2)), true, section.Rva + (uint)offset, section.Name));
            }
            else
            {
                into.Add(new StringFact(Encoding.ASCII.GetString(bytes.Slice(start, len)), false, section.Rva + (uint)start, section.Name));
            }
        }
    }
}
