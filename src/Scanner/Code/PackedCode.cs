using System.Buffers;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Whether an image's code is packed or encrypted, so that disassembling it would report noise: its real
/// instructions exist only after it unpacks itself at run time. Evidence, any one of which suffices:
/// a section name that a packer or protector writes (UPX, VMProtect, Themida, ...); an executable section of
/// at least <see cref="MinSectionBytes"/> whose byte entropy is at least <see cref="ExecutableEntropy"/> bits
/// (compiled x86/x64 code stays near 6); a writable and executable section of that size with entropy at least
/// <see cref="WritableExecutableEntropy"/>; an entry point outside every executable section. A tiny import
/// table that resolves routines at run time is reported alongside, never alone.
/// </summary>
internal static class PackedCode
{
    public const double ExecutableEntropy = 7.2;
    public const double WritableExecutableEntropy = 6.8;
    public const int MinSectionBytes = 4096;
    /// <summary>Entropy is measured on at most this many bytes of a section.</summary>
    public const int MaxSampleBytes = 4 << 20;

    /// <summary>Section names written by packers and protectors (compared case-insensitively).</summary>
    public static IReadOnlyList<string> PackerSectionNames { get; } =
    [
        "UPX0", "UPX1", "UPX2", ".UPX0", ".UPX1", ".vmp0", ".vmp1", ".vmp2", ".themida", ".winlice", ".enigma1", ".enigma2",
        ".aspack", ".adata", ".MPRESS1", ".MPRESS2", ".petite", ".nsp0", ".nsp1", ".perplex", ".packed", ".RLPack", ".yP", ".svkp",
    ];

    /// <summary>Why the image looks packed (evidence in a short sentence), or null when it does not.</summary>
    public static string? Detect(PeImage image)
    {
        var evidence = new List<string>();
        foreach (var s in image.Sections)
        {
            foreach (var name in PackerSectionNames)
                if (string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)) { evidence.Add($"section {s.Name} is a packer's"); break; }
            if (!s.Executable) continue;
            var size = (int)Math.Min(image.DataSize(s), MaxSampleBytes);
            if (size < MinSectionBytes) continue;
            var entropy = Entropy(image, s.Rva, size);
            var writable = (s.Characteristics & PeSection.MemWrite) != 0;
            if (entropy >= ExecutableEntropy || (writable && entropy >= WritableExecutableEntropy))
                evidence.Add($"{(writable ? "writable executable" : "executable")} section {s.Name} has entropy {entropy:0.00}");
        }
        var entry = image.AddressOfEntryPoint;
        if (entry != 0 && image.FindSection(entry) is not { Executable: true } at)
            evidence.Add(image.FindSection(entry) is { } where ? $"the entry point is in non-executable section {where.Name}" : "the entry point is outside every section");
        if (evidence.Count == 0) return null;
        var imports = image.Imports.Imports;
        if (imports.Count <= 4 && imports.Any(i => i.Name is "MmGetSystemRoutineAddress" or "GetProcAddress"))
            evidence.Add($"it imports only {imports.Count} function(s), resolving the rest at run time");
        return string.Join("; ", evidence);
    }

    /// <summary>
    /// Byte counts in four interleaved tables (byte k of each group of four counted in table k % 4), so that a run
    /// of equal bytes (zero padding, int3 fill) does not make each increment wait for the previous one.
    /// </summary>
    private static Span<int> Histogram(ReadOnlySpan<byte> data, Span<int> counts)
    {
        counts.Clear();
        var k = 0;
        for (; k + 4 <= data.Length; k += 4)
        {
            counts[data[k]]++;
            counts[256 + data[k + 1]]++;
            counts[512 + data[k + 2]]++;
            counts[768 + data[k + 3]]++;
        }
        for (; k < data.Length; k++) counts[data[k]]++;
        return counts;
    }

    private static double Entropy(PeImage image, uint rva, int size)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var n = image.ReadRva(rva, buffer.AsSpan(0, size));
            if (n == 0) return 0;
            var counts = Histogram(buffer.AsSpan(0, n), stackalloc int[4 * 256]);
            double h = 0;
            for (var v = 0; v < 256; v++)
            {
                var c = counts[v] + counts[256 + v] + counts[512 + v] + counts[768 + v];
                if (c == 0) continue;
                var p = (double)c / n;
                h -= p * Math.Log2(p);
            }
            return h;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
