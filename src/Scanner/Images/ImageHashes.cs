using System.Buffers;
using System.Security.Cryptography;

namespace DriverAudit.Scanner.Images;

/// <summary>Whole-source digests, streamed through a pooled buffer.</summary>
public static class ImageHashes
{
    /// <summary>Lower-case hex SHA-256 of every byte of <paramref name="source"/>; null when a read falls short.</summary>
    public static string? Sha256(IImageSource source)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long position = 0;
            while (position < source.Length)
            {
                var n = source.Read(position, buffer);
                if (n <= 0) return null; // file changed under us, or a missing page
                hash.AppendData(buffer, 0, n);
                position += n;
            }
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
