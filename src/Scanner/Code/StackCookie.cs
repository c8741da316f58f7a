using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
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
        var candidates = DefaultCookieSites(image);
        if (candidates.Count == 0) return false;
        if (code.NotEvaluatedReason is not null) return null;
        foreach (var rva in candidates)
            if (code.IsReferenced(rva) == true) return true;
        return false;
    }

    /// <summary>RVAs of aligned default-cookie values in non-executable sections, in address order.</summary>
    public static List<uint> DefaultCookieSites(PeImage image)
    {
        var sites = new List<uint>();
        var wide = image.Is64Bit;
        var step = wide ? 8 : 4;
        long budget = MaxScanBytes;
        // When reads do not depend on where they start, a section is read a chunk at a time into one small buffer
        // (cache-sized, aligned to the value size): the same bytes, up to the same first unreadable one.
        var chunk = CodeImage.PositionIndependent(image) ? ChunkBytes : int.MaxValue;
        byte[]? buffer = null;
        try
        {
            foreach (var s in image.Sections)
            {
                if (s.Executable) continue;
                var size = (int)Math.Min(image.DataSize(s), budget);
                if (size < step) continue;
                budget -= size;
                var length = Math.Min(size, chunk);
                if (buffer is null || buffer.Length < length)
                {
                    if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                for (var at = 0; at < size; at += chunk)
                {
                    var want = Math.Min(chunk, size - at);
                    var n = image.ReadRva(s.Rva + (uint)at, buffer.AsSpan(0, want));
                    // Aligned values only, found with a vectorised search (this reads every data byte of the image).
                    if (wide) Find(MemoryMarshal.Cast<byte, ulong>(buffer.AsSpan(0, n)), BitConverter.IsLittleEndian ? DefaultCookie64 : BinaryPrimitives.ReverseEndianness(DefaultCookie64), s.Rva + (uint)at, 8, sites);
                    else Find(MemoryMarshal.Cast<byte, uint>(buffer.AsSpan(0, n)), BitConverter.IsLittleEndian ? DefaultCookie32 : BinaryPrimitives.ReverseEndianness(DefaultCookie32), s.Rva + (uint)at, 4, sites);
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
