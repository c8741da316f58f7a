using System.Buffers;
using System.Security.Cryptography;

namespace DriverAudit.Scanner.Images;

/// <summary>Whole-source digests, streamed through a pooled buffer.</summary>
internal static class ImageHashes
{
    private const int OneShotLimit = 1 << 20;

    /// <summary>Lower-case hex SHA-256 of every byte of <paramref name="source"/>; null when a read falls short.</summary>
    public static string? Sha256(IImageSource source) => Digest(source, HashAlgorithmName.SHA256);

    /// <summary>Lower-case hex SHA-1 of every byte of <paramref name="source"/> (inventories list it); null when a read falls short.</summary>
    public static string? Sha1(IImageSource source) => Digest(source, HashAlgorithmName.SHA1);

    private static string? Digest(IImageSource source, HashAlgorithmName algorithm)
    {
        // Most drivers are small: one read and a one-shot hash (no incremental-hash object to set up per file).
        if (source.Length <= OneShotLimit)
        {
            var whole = ArrayPool<byte>.Shared.Rent((int)Math.Max(source.Length, 1));
            try
            {
                var n = source.Read(0, whole.AsSpan(0, (int)source.Length));
                if (n != source.Length) return null;
                Span<byte> digest = stackalloc byte[32];
                var written = algorithm == HashAlgorithmName.SHA1
                    ? SHA1.HashData(whole.AsSpan(0, n), digest)
                    : SHA256.HashData(whole.AsSpan(0, n), digest);
                return Convert.ToHexStringLower(digest[..written]);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(whole);
            }
        }
        using var hash = IncrementalHash.CreateHash(algorithm);
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
