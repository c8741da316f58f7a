using System.Buffers;
using System.Text;
using DriverAudit.Rules.Facts;

namespace DriverAudit.Scanner.Pe;

/// <summary>
/// ASCII and UTF-16LE strings in the image's non-executable sections (where drivers keep device names,
/// SDDL strings and registry paths). Code bytes are skipped: instruction streams produce noise strings.
/// </summary>
public static class PeStrings
{
    public const int MinLength = 4;
    /// <summary>Bytes read per image at most; beyond that strings are not collected (bounded work on hostile images).</summary>
    public const int MaxBytesPerImage = 32 << 20;
    public const int MaxStrings = 100_000;
    private const int MaxStringLength = 4096;

    public static IReadOnlyList<StringFact> Extract(PeImage image)
    {
        var result = new List<StringFact>();
        long budget = MaxBytesPerImage;
        foreach (var section in image.Sections)
        {
            if (section.Executable || section.Name == ".reloc" || section.Name == ".pdata") continue;
            var size = (int)Math.Min(image.DataSize(section), budget);
            if (size <= 0) continue;
            budget -= size;
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                var n = image.ReadRva(section.Rva, buffer.AsSpan(0, size));
                var bytes = buffer.AsSpan(0, n);
                Ascii(bytes, section, result);
                Utf16(bytes, section, result);
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

    private static void Ascii(ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
    {
        var start = -1;
        for (var i = 0; i <= bytes.Length; i++)
        {
            var ok = i < bytes.Length && Printable(bytes[i]);
            if (ok) { if (start < 0) start = i; continue; }
            if (start >= 0 && i - start >= MinLength)
            {
                var len = Math.Min(i - start, MaxStringLength);
                into.Add(new StringFact(Encoding.ASCII.GetString(bytes.Slice(start, len)), false, section.Rva + (uint)start, section.Name));
            }
            start = -1;
        }
    }

    private static void Utf16(ReadOnlySpan<byte> bytes, PeSection section, List<StringFact> into)
    {
        // Two alignments: a UTF-16 string may start at an odd offset inside packed data.
        for (var phase = 0; phase < 2; phase++)
        {
            var start = -1;
            for (var i = phase; i + 1 <= bytes.Length; i += 2)
            {
                var ok = i + 1 < bytes.Length && bytes[i + 1] == 0 && Printable(bytes[i]);
                if (ok) { if (start < 0) start = i; continue; }
                if (start >= 0 && (i - start) / 2 >= MinLength)
                {
                    var len = Math.Min((i - start) / 2, MaxStringLength);
                    into.Add(new StringFact(Encoding.Unicode.GetString(bytes.Slice(start, len * 2)), true, section.Rva + (uint)start, section.Name));
                }
                start = -1;
            }
        }
    }
}
