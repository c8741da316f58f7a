using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DriverAudit.Scanner.Images;
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
    /// <param name="code">
    /// The image's code bytes when already read: a section's entropy is then measured on them instead of reading the
    /// section again, where they are provably the bytes a read of the section returns (see <see cref="SharedBytes"/>).
    /// </param>
    public static string? Detect(PeImage image, CodeImage? code = null)
    {
        var evidence = new List<string>();
        var shared = code is not null && image.Layout == ImageLayout.File && CodeImage.PositionIndependent(image);
        foreach (var s in image.Sections)
        {
            foreach (var name in PackerSectionNames)
                if (string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)) { evidence.Add($"section {s.Name} is a packer's"); break; }
            if (!s.Executable) continue;
            var size = (int)Math.Min(image.DataSize(s), MaxSampleBytes);
            if (size < MinSectionBytes) continue;
            var entropy = shared && SharedBytes(code!, s.Rva, size) is { } bytes ? Entropy(bytes) : Entropy(image, s.Rva, size);
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
        if (counts.Length < 4 * 256) throw new ArgumentException("four tables of 256 counts", nameof(counts));
        counts.Clear();
        // Indexes are a byte plus 0, 256, 512 or 768: below the 1,024 checked above, so no per-byte bounds checks.
        ref var c = ref MemoryMarshal.GetReference(counts);
        ref var d = ref MemoryMarshal.GetReference(data);
        var k = 0;
        for (; k + 4 <= data.Length; k += 4)
        {
            Unsafe.Add(ref c, Unsafe.Add(ref d, k))++;
            Unsafe.Add(ref c, 256 + Unsafe.Add(ref d, k + 1))++;
            Unsafe.Add(ref c, 512 + Unsafe.Add(ref d, k + 2))++;
            Unsafe.Add(ref c, 768 + Unsafe.Add(ref d, k + 3))++;
        }
        for (; k < data.Length; k++) counts[data[k]]++;
        return counts;
    }

    /// <summary>
    /// The code bytes at <paramref name="rva"/>, when one code section holds all <paramref name="size"/> of them. Only
    /// asked for file images whose reads do not depend on where they start: a read of a section's first DataSize bytes
    /// then stays inside the section's raw data and the file, so it returns all of them, and they are the bytes the
    /// code image holds there.
    /// </summary>
    private static ReadOnlySpan<byte> SharedBytes(CodeImage code, uint rva, int size)
    {
        foreach (var section in code.Sections)
            if (rva >= section.Rva && (ulong)rva + (ulong)size <= section.EndRva)
                return section.Bytes.AsSpan((int)(rva - section.Rva), size);
        return default;
    }

    private static double Entropy(PeImage image, uint rva, int size)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var n = image.ReadRva(rva, buffer.AsSpan(0, size));
            return Entropy(buffer.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static double Entropy(ReadOnlySpan<byte> bytes)
    {
        var n = bytes.Length;
        if (n == 0) return 0;
        var counts = Histogram(bytes, stackalloc int[4 * 256]);
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
}
