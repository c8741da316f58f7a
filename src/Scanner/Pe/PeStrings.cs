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

    /// <summary>Bytes of a span the needle search searches at a time (with <see cref="Margin"/> bytes on each side in memory).</summary>
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
    /// Searches the image once for all <paramref name="needles"/>: each span's bytes are read once, a chunk at a time, and
    /// every needle (ASCII and UTF-16LE) is looked for in the chunk in memory. For each needle the result holds the strings
    /// around its occurrences, rebuilt exactly as <see cref="Extract"/> builds them, so that any rule holding the needle
    /// can ask its own matcher (<see cref="NeedleHits.MayHave"/>) without the image's strings being extracted.
    /// </summary>
    public static NeedleHits[] Search(PeImage image, IReadOnlyList<StringNeedle> needles)
    {
        var hits = new NeedleHits[needles.Count];
        for (var i = 0; i < hits.Length; i++) hits[i] = new NeedleHits(needles[i]);
        if (!hits.Any(h => h.Searching)) return hits;
        foreach (var (section, size, min) in StringSpans(image))
        {
            var rva = section.Rva;
            SearchSpan(size, (offset, into) => image.ReadRva(rva + (uint)offset, into), section, min, hits);
            if (!hits.Any(h => h.Searching)) break;
        }
        return hits;
    }

    /// <summary>
    /// False only when <see cref="Extract"/> cannot return a string for which <paramref name="match"/> is true, given
    /// that every such string contains <paramref name="needle"/> (<see cref="Search"/> for one needle).
    /// </summary>
    public static bool MayHave(PeImage image, StringNeedle needle, Func<StringFact, bool> match) => Search(image, [needle])[0].MayHave(match);

    /// <summary>
    /// <see cref="Search"/> over one span of <paramref name="size"/> bytes. The span is read <paramref name="chunk"/> bytes
    /// at a time into a window that also holds <see cref="Margin"/> bytes on each side (carried over from the last read,
    /// so each byte is read once), so a 16 MB debug section costs a 1 MB buffer.
    /// </summary>
    internal static void SearchSpan(int size, SpanReader read, PeSection section, int min, NeedleHits[] hits, int chunk = SearchChunk)
    {
        var tail = 0; // bytes past a chunk an occurrence starting in it spans: the longest UTF-16 needle
        foreach (var h in hits)
        {
            h.StartSpan();
            if (h.Searching) tail = Math.Max(tail, h.Text.Length * 2);
        }
        if (tail == 0) return;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, (long)chunk + 2 * Margin + tail));
        try
        {
            int origin = 0, filled = 0; // buffer[0..filled) holds the span's bytes from origin
            for (var pos = 0; pos < size; pos += chunk)
            {
                var from = Math.Max(0, pos - Margin);
                var end = (int)Math.Min(size, (long)pos + chunk + Margin + tail);
                var keep = Math.Max(0, origin + filled - from);
                if (keep > 0 && from > origin) buffer.AsSpan(from - origin, keep).CopyTo(buffer);
                origin = from;
                filled = keep;
                var want = end - origin - filled;
                var n = want > 0 ? Math.Max(0, read(origin + filled, buffer.AsSpan(filled, want))) : 0;
                filled += n;
                var bytes = new ReadOnlySpan<byte>(buffer, 0, filled);
                var to = Math.Min(pos + chunk, origin + filled) - origin;
                if (to <= pos - origin) break;
                foreach (var h in hits)
                    if (h.Searching) Scan(bytes, origin, pos - origin, to, h, section, min);
                if (n < want) break; // the data ends here, as it would for one read of the whole span
                if (!hits.Any(h => h.Searching)) break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Finds the occurrences of one needle that start in [<paramref name="from"/>, <paramref name="to"/>) of
    /// <paramref name="bytes"/> (the span's bytes from <paramref name="origin"/>), in the encodings it asks for. Positions
    /// are filtered 16 at a time by the needle's first unit and its last (ASCII at <c>length - 1</c>, UTF-16LE at
    /// <c>2 (length - 1)</c>, both in one pass), and each one left is compared in full.
    /// </summary>
    private static void Scan(ReadOnlySpan<byte> bytes, int origin, int from, int to, NeedleHits h, PeSection section, int min)
    {
        var text = h.Text;
        var m = text.Length;
        // Second anchor per encoding: the last character; for a one-character UTF-16 needle its zero high byte.
        int lastA = m - 1, lastW = m > 1 ? 2 * (m - 1) : 1;
        var firstV = Vector128.Create(h.First);
        var firstFold = Vector128.Create(h.FirstFold);
        var lastAV = Vector128.Create(h.Ascii ? h.Last : (byte)0);
        var lastAFold = Vector128.Create(h.Ascii ? h.LastFold : (byte)0);
        var lastWV = Vector128.Create(m > 1 ? h.Last : (byte)0);
        var lastWFold = Vector128.Create(m > 1 ? h.LastFold : (byte)0);
        var reach = Math.Max(h.Ascii ? lastA : 0, h.Utf16 ? lastW : 0);
        ref var start = ref MemoryMarshal.GetReference(bytes);
        var i = from;
        if (Vector256.IsHardwareAccelerated)
        {
            // The same filter 32 positions at a time (the 16-wide loop below finishes the rest): half the iterations
            // over the megabytes of debug sections a needle is looked for in.
            var firstV2 = Vector256.Create(h.First);
            var firstFold2 = Vector256.Create(h.FirstFold);
            var lastAV2 = Vector256.Create(h.Ascii ? h.Last : (byte)0);
            var lastAFold2 = Vector256.Create(h.Ascii ? h.LastFold : (byte)0);
            var lastWV2 = Vector256.Create(m > 1 ? h.Last : (byte)0);
            var lastWFold2 = Vector256.Create(m > 1 ? h.LastFold : (byte)0);
            for (; i < to && i + reach + Vector256<byte>.Count <= bytes.Length; i += Vector256<byte>.Count)
            {
                var first = Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)i) | firstFold2, firstV2);
                if (first == Vector256<byte>.Zero) continue;
                var last = Vector256<byte>.Zero;
                if (h.Ascii) last = Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)(i + lastA)) | lastAFold2, lastAV2);
                if (h.Utf16) last |= Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)(i + lastW)) | lastWFold2, lastWV2);
                var bits = (first & last).ExtractMostSignificantBits();
                if (!VerifyEach(bits, i, bytes, origin, to, h, section, min)) return;
            }
        }
        for (; i < to && i + reach + Vector128<byte>.Count <= bytes.Length; i += Vector128<byte>.Count)
        {
            var first = Vector128.Equals(Vector128.LoadUnsafe(ref start, (nuint)i) | firstFold, firstV);
            if (first == Vector128<byte>.Zero) continue;
            var last = Vector128<byte>.Zero;
            if (h.Ascii) last = Vector128.Equals(Vector128.LoadUnsafe(ref start, (nuint)(i + lastA)) | lastAFold, lastAV);
            if (h.Utf16) last |= Vector128.Equals(Vector128.LoadUnsafe(ref start, (nuint)(i + lastW)) | lastWFold, lastWV);
            var bits = (first & last).ExtractMostSignificantBits();
            if (!VerifyEach(bits, i, bytes, origin, to, h, section, min)) return;
        }
        for (; i < to; i++)
            if (!Verify(bytes, origin, i, h, section, min)) return;
    }

    /// <summary>
    /// <see cref="Verify"/> at each candidate position (bit k of <paramref name="bits"/>: position <paramref name="i"/> + k);
    /// false once the scan is over (a position at or past <paramref name="to"/>, or the needle stops searching).
    /// </summary>
    private static bool VerifyEach(ulong bits, int i, ReadOnlySpan<byte> bytes, int origin, int to, NeedleHits h, PeSection section, int min)
    {
        while (bits != 0)
        {
            var at = i + BitOperations.TrailingZeroCount(bits);
            bits &= bits - 1;
            if (at >= to) return false;
            if (!Verify(bytes, origin, at, h, section, min)) return false;
        }
        return true;
    }

    /// <summary>Records the strings around an occurrence of the needle at <paramref name="at"/> in each encoding; false once the needle stops searching.</summary>
    private static bool Verify(ReadOnlySpan<byte> bytes, int origin, int at, NeedleHits h, PeSection section, int min)
    {
        if (h.Ascii && Holds(bytes, at, h, utf16: false)) Found(bytes, origin, at, utf16: false, h, section, min);
        if (h.Utf16 && Holds(bytes, at, h, utf16: true)) Found(bytes, origin, at, utf16: true, h, section, min);
        return h.Searching;
    }

    /// <summary>Whether the needle's units (ASCII bytes, or UTF-16LE pairs with a zero high byte) start at <paramref name="at"/>.</summary>
    private static bool Holds(ReadOnlySpan<byte> bytes, int at, NeedleHits h, bool utf16)
    {
        var text = h.Text;
        var unit = utf16 ? 2 : 1;
        if (at > bytes.Length - text.Length * unit) return false;
        for (var k = 0; k < text.Length; k++)
        {
            var b = bytes[at + k * unit];
            var c = text[k];
            if (b != c && !(h.IgnoreCase && char.IsAsciiLetter((char)c) && (b | 0x20) == (c | 0x20))) return false;
            if (utf16 && bytes[at + k * 2 + 1] != 0) return false;
        }
        return true;
    }

    /// <summary>
    /// Rebuilds the string <see cref="Extract"/> takes around an occurrence at <paramref name="at"/> in one encoding (at
    /// its start when the needle asks) and records it. Each run of printable units is rebuilt once per needle
    /// (<see cref="NeedleHits.Tried"/>: span offset where the last one ended, per alignment).
    /// </summary>
    private static void Found(ReadOnlySpan<byte> bytes, int origin, int at, bool utf16, NeedleHits h, PeSection section, int min)
    {
        var unit = utf16 ? 2 : 1;
        ref var done = ref h.Tried[utf16 ? 1 + ((origin + at) & 1) : 0];
        if (origin + at < done) return; // inside a run already rebuilt
        var start = at;
        if (h.AtStart)
        {
            if (at >= unit && PrintableAt(bytes, at - unit, utf16)) return;
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
        if (start < unit && origin > 0) return;
        var length = (end - start) / unit;
        if (length < min) return;
        // A run that goes on past the bytes read is longer than MaxStringLength units (Margin): its text is inside.
        var len = Math.Min(length, MaxStringLength);
        var value = utf16 ? Encoding.Unicode.GetString(bytes.Slice(start, len * 2)) : Encoding.ASCII.GetString(bytes.Slice(start, len));
        h.Add(new StringFact(value, utf16, section.Rva + (uint)(origin + start), section.Name));
    }

    /// <summary>Printable unit at <paramref name="at"/>: as <see cref="Ascii"/> and <see cref="Utf16"/> classify it.</summary>
    private static bool PrintableAt(ReadOnlySpan<byte> bytes, int at, bool utf16) =>
        Printable(bytes[at]) && (!utf16 || bytes[at + 1] == 0);

    /// <summary>
    /// What <see cref="Search"/> found for one needle: the strings <see cref="Extract"/> would return that hold an
    /// occurrence of it, or, when it could not rule anything out (a needle with a character no string holds, more than
    /// <see cref="MaxKept"/> such strings), nothing known.
    /// </summary>
    internal sealed class NeedleHits
    {
        /// <summary>Strings kept per needle; past this the needle rules nothing out (bounded memory on hostile images).</summary>
        public const int MaxKept = 256;

        private readonly List<StringFact> _strings = [];

        public NeedleHits(StringNeedle needle)
        {
            Needle = needle;
            // Strings hold only printable ASCII and tabs; any other needle character is left to the full extraction
            // (ignore-case comparison of non-ASCII characters is not worth reasoning about here).
            Unknown = needle.Text.Length == 0 || needle.Text.Any(c => !Printable(c));
            Text = Unknown ? [] : Encoding.ASCII.GetBytes(needle.Text);
            if (Unknown) return;
            (First, FirstFold) = Anchor(Text[0]);
            (Last, LastFold) = Anchor(Text[^1]);
        }

        public StringNeedle Needle { get; }
        public bool Unknown { get; private set; }

        /// <summary>Still looking: known so far, and an encoding to look in.</summary>
        public bool Searching => !Unknown && (Ascii || Utf16);

        /// <summary>The strings found, in span order (complete unless <see cref="Unknown"/>).</summary>
        public IReadOnlyList<StringFact> Strings => _strings;

        /// <summary>False only when no string of the image holding the needle satisfies <paramref name="match"/>.</summary>
        public bool MayHave(Func<StringFact, bool> match)
        {
            if (Unknown) return true;
            foreach (var s in _strings)
                if (match(s)) return true;
            return false;
        }

        internal byte[] Text { get; }
        internal bool IgnoreCase => Needle.IgnoreCase;
        internal bool AtStart => Needle.AtStart;
        internal bool Ascii => Needle.Ascii;
        internal bool Utf16 => Needle.Utf16;

        /// <summary>A unit's anchor byte and what is OR-ed in before comparing (0x20 folds an ignore-case letter).</summary>
        internal byte First, FirstFold, Last, LastFold;

        /// <summary>Span offset where the last run rebuilt ended: ASCII; UTF-16 at even and at odd offsets.</summary>
        internal readonly int[] Tried = new int[3];

        internal void StartSpan() => Array.Clear(Tried);

        internal void Add(StringFact s)
        {
            if (_strings.Count == MaxKept)
            {
                Unknown = true;
                _strings.Clear();
                return;
            }
            _strings.Add(s);
        }

        private (byte Value, byte Fold) Anchor(byte b) => IgnoreCase && char.IsAsciiLetter((char)b) ? ((byte)(b | 0x20), (byte)0x20) : (b, (byte)0);
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
