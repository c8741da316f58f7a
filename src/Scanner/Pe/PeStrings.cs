using System.Buffers;
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
public static class PeStrings
{
    public const int MinLength = 4;
    /// <summary>Shortest string taken from an executable section (code bytes make many 4-5 character runs).</summary>
    public const int MinLengthInCode = 6;
    /// <summary>Bytes read per image at most; beyond that strings are not collected (bounded work on hostile images).</summary>
    public const int MaxBytesPerImage = 32 << 20;
    public const int MaxStrings = 100_000;
    private const int MaxStringLength = 4096;

    public static IReadOnlyList<StringFact> Extract(PeImage image)
    {
        var result = new List<StringFact>();
        long budget = MaxBytesPerImage;
        // Each byte behind the image once, however many section headers map it (DistinctSpans).
        foreach (var span in image.DistinctSpans(static s => s.Name != ".reloc" && s.Name != ".pdata"))
        {
            var section = span.Section with { Rva = span.Rva }; // strings are placed relative to the span read
            var min = section.Executable ? MinLengthInCode : MinLength;
            var size = (int)Math.Min(span.Length, budget);
            if (size <= 0) continue;
            budget -= size;
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                var n = image.ReadRva(section.Rva, buffer.AsSpan(0, size));
                var bytes = buffer.AsSpan(0, n);
                Ascii(bytes, section, min, result);
                Utf16(bytes, section, min, result);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (result.Count >= MaxStrings) break;
        }
        // Section order, then RVA: deterministic whatever the two passes found first.
        result.Sort(static (a, b) => a.Rva != b.Rva ? a.Rva.CompareTo(b.Rva) : a.Utf16.CompareTo(b.Utf16));
        return result.Count > MaxStrings ? result.GetRange(0, MaxStrings) : result;
    }

    private static bool Printable(int c) => c is >= 0x20 and < 0x7f or '\t';

    private static void Ascii(ReadOnlySpan<byte> bytes, PeSection section, int min, List<StringFact> into)
    {
        var start = -1;
        for (var i = 0; i <= bytes.Length; i++)
        {
            var ok = i < bytes.Length && Printable(bytes[i]);
            if (ok) { if (start < 0) start = i; continue; }
            if (start >= 0 && i - start >= min)
            {
                var len = Math.Min(i - start, MaxStringLength);
                into.Add(new StringFact(Encoding.ASCII.GetString(bytes.Slice(start, len)), false, section.Rva + (uint)start, section.Name));
            }
            start = -1;
        }
    }

    private static void Utf16(ReadOnlySpan<byte> bytes, PeSection section, int min, List<StringFact> into)
    {
        // Two alignments: a UTF-16 string may start at an odd offset inside packed data.
        for (var phase = 0; phase < 2; phase++)
        {
            var start = -1;
            for (var i = phase; i + 1 <= bytes.Length; i += 2)
            {
                var ok = i + 1 < bytes.Length && bytes[i + 1] == 0 && Printable(bytes[i]);
                if (ok) { if (start < 0) start = i; continue; }
                if (start >= 0 && (i - start) / 2 >= min)
                {
                    var len = Math.Min((i - start) / 2, MaxStringLength);
                    into.Add(new StringFact(Encoding.Unicode.GetString(bytes.Slice(start, len * 2)), true, section.Rva + (uint)start, section.Name));
                }
                start = -1;
            }
        }
    }
}
