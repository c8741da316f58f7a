using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// /GS evidence in code, for images without a load configuration that names the cookie (WDK 7-era drivers
/// link GsDriverEntry and <c>__security_cookie</c> without one). The compiler initialises the cookie variable
/// with a fixed default (x64 and ARM64 0x2B992DDFA232, x86 0xBB40E64E) that the driver's entry replaces at
/// run time; every protected function reads that variable and <c>__security_check_cookie</c> compares
/// against it. So: the default value sits aligned in a non-executable section, and decoded code reads it.
/// </summary>
internal static class StackCookie
{
    public const ulong DefaultCookie64 = 0x00002B992DDFA232;
    public const uint DefaultCookie32 = 0xBB40E64E;
    private const int MaxScanBytes = 16 << 20;

    /// <summary>
    /// True when code reads a variable holding the default cookie; false when no non-executable section holds the
    /// default cookie; null when it is there but the code could not be analysed (other architectures, packed).
    /// </summary>
    public static bool? FromCode(PeImage image, CodeFacts code)
    {
        // Once the code's references are known (another rule built them; they are not built for this), only the aligned
        // words code reads can answer: reading those skips debug sections and resources, which code never references.
        // The same answer as the search below (which needs no code analysis when no section holds the value) whenever
        // a slice of a read equals a read of the slice and a section's bytes end only where the file does: file images
        // whose sections do not overlap. Dumps (a missing page in the middle of a section) keep the search.
        if (image.Layout == ImageLayout.File && code.ReferencesIfAnalysed is { } references && CodeImage.PositionIndependent(image))
            return ReadsDefaultCookie(image, references) || ReadsDefaultCookie(image, code.ReferencedViaDescriptor());
        var candidates = DefaultCookieSites(image);
        if (candidates.Count == 0) return false;
        if (code.NotEvaluatedReason is not null) return null;
        foreach (var rva in candidates)
            if (code.IsReferenced(rva) == true) return true;
        return false;
    }

    /// <summary>
    /// Whether one of <see cref="DefaultCookieSites"/> is in <paramref name="referenced"/>, reading only the referenced
    /// aligned words of the searched ranges (same sections, order, budget and alignment), a window at a time. For file
    /// images whose sections do not overlap (<see cref="CodeImage.PositionIndependent"/>).
    /// </summary>
    internal static bool ReadsDefaultCookie(PeImage image, IReadOnlySet<uint> referenced)
    {
        if (referenced.Count == 0) return false;
        if (referenced is not RvaSet set)
        {
            // Another analysis's hash set (ARM64, descriptor buffers): usually small; the bitmap gives ascending ranges.
            set = new RvaSet((uint)Math.Min((ulong)referenced.Max() + 1, uint.MaxValue)); // its last page holds uint.MaxValue too
            foreach (var r in referenced) set.Add(r);
        }
        var wide = image.Is64Bit;
        var step = wide ? 8 : 4;
        Span<byte> word = stackalloc byte[8];
        using var window = new WindowedReader(image);
        foreach (var (from, size) in SearchedRanges(image, step))
        {
            foreach (var rva in set.InRange(from, (ulong)from + (uint)size, step))
            {
                var at = rva - from; // a multiple of step
                if (at + step > size) break;
                // A short read: the file ended there, and the search stops reading this section at its first short read.
                if (window.Read(rva, word[..step]) < step) break;
                if (wide ? BinaryPrimitives.ReadUInt64LittleEndian(word) == DefaultCookie64 : BinaryPrimitives.ReadUInt32LittleEndian(word) == DefaultCookie32)
                    return true;
            }
        }
        return false;
    }

    /// <summary>RVAs of aligned default-cookie values in non-executable sections, in address order.</summary>
    public static List<uint> DefaultCookieSites(PeImage image)
    {
        var sites = new List<uint>();
        var wide = image.Is64Bit;
        var step = wide ? 8 : 4;
        // When reads do not depend on where they start, a section is read a chunk at a time into one small buffer
        // (cache-sized, aligned to the value size): the same bytes, up to the same first unreadable one.
        var chunk = CodeImage.PositionIndependent(image) ? ChunkBytes : int.MaxValue;
        byte[]? buffer = null;
        try
        {
            foreach (var (rva, size) in SearchedRanges(image, step))
            {
                var length = Math.Min(size, chunk);
                if (buffer is null || buffer.Length < length)
                {
                    if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                for (var at = 0; at < size; at += chunk)
                {
                    var want = Math.Min(chunk, size - at);
                    var n = image.ReadRva(rva + (uint)at, buffer.AsSpan(0, want));
                    // Aligned values only, found with a vectorised search (this reads every data byte of the image).
                    if (wide) Find(MemoryMarshal.Cast<byte, ulong>(buffer.AsSpan(0, n)), BitConverter.IsLittleEndian ? DefaultCookie64 : BinaryPrimitives.ReverseEndianness(DefaultCookie64), rva + (uint)at, 8, sites);
                    else Find(MemoryMarshal.Cast<byte, uint>(buffer.AsSpan(0, n)), BitConverter.IsLittleEndian ? DefaultCookie32 : BinaryPrimitives.ReverseEndianness(DefaultCookie32), rva + (uint)at, 4, sites);
                    if (n < want) break;
                }
            }
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
        return sites;
    }

    /// <summary>
    /// What the search covers, in section order: each non-executable section's data (<see cref="PeImage.DataSize"/>)
    /// up to a running budget, sections smaller than one value left out.
    /// </summary>
    private static List<(uint Rva, int Size)> SearchedRanges(PeImage image, int step)
    {
        var ranges = new List<(uint, int)>();
        long budget = MaxScanBytes;
        foreach (var s in image.Sections)
        {
            if (s.Executable) continue;
            var size = (int)Math.Min(image.DataSize(s), budget);
            if (size < step) continue;
            budget -= size;
            ranges.Add((s.Rva, size));
        }
        return ranges;
    }

    /// <summary>Bytes read at a time when a section is read in chunks: a multiple of 8, so values stay aligned.</summary>
    private const int ChunkBytes = 256 << 10;

    private static void Find<T>(ReadOnlySpan<T> values, T cookie, uint rva, int step, List<uint> sites) where T : IEquatable<T>
    {
        for (var at = 0; ;)
        {
            var i = values[at..].IndexOf(cookie);
            if (i < 0) return;
            at += i;
            sites.Add(rva + (uint)(at * step));
            at++;
        }
    }
}
