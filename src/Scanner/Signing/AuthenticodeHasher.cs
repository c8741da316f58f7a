using System.Buffers;
using System.Security.Cryptography;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Signing;

/// <summary>The Authenticode digests of one image, lowercase hex.</summary>
/// <param name="Sha1">SHA-1 Authenticode hash (the "authentihash" of SHA-1 signatures and catalogs).</param>
/// <param name="Sha256">SHA-256 Authenticode hash (what LOLDrivers lists as Authentihash.SHA256).</param>
/// <param name="PaddingBytes">
/// Zero bytes appended to an unsigned file whose length is not a multiple of 8 (0 otherwise): signing tools pad the
/// file to 8 bytes before appending the certificate table, and that padding is hashed, so hashing an unsigned file
/// the same way gives the digest its signature would carry (osslsigncode does the same).
/// </param>
/// <param name="Diagnostics">Layout oddities met while hashing; the digests are still what the layout implies.</param>
internal sealed record AuthenticodeHash(string Sha1, string Sha256, int PaddingBytes, IReadOnlyList<PeDiagnostic> Diagnostics)
{
    /// <summary>The digest for a hash-algorithm OID or name ("sha1", "sha256"), or null for one not computed here.</summary>
    public string? ForAlgorithm(string? oidOrName) => AuthenticodeOids.HashName(oidOrName) switch
    {
        "sha1" => Sha1,
        "sha256" => Sha256,
        _ => null,
    };
}

/// <summary>Outcome of <see cref="AuthenticodeHasher.Compute"/>: the hash, or null and why.</summary>
internal readonly record struct AuthenticodeHashResult(AuthenticodeHash? Hash, string? Reason)
{
    public bool Success => Hash is not null;
}

/// <summary>
/// Authenticode image hash ("Windows Authenticode Portable Executable Signature Format", "Calculating the PE Image
/// Hash"): the headers up to SizeOfHeaders without the CheckSum field and the certificate-table directory entry,
/// then each section's raw data (SizeOfRawData &gt; 0) in PointerToRawData order, then the bytes after the last
/// section up to the certificate table (or to the end of an unsigned file, plus its 8-byte padding). The
/// certificate table and anything after it are excluded. SHA-1 and SHA-256 come from one streaming pass through the
/// source with one pooled buffer. File layout only: a loaded image has no certificate table or raw layout.
/// </summary>
internal static class AuthenticodeHasher
{
    private const int BufferSize = 1 << 16;
    private const string NotFileLayoutReason = "the Authenticode hash needs the file layout; a loaded image (dump module) has no certificate table or raw section layout";

    public static AuthenticodeHashResult Compute(PeImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Layout != ImageLayout.File) return new(null, NotFileLayoutReason);

        var source = image.Source;
        var fileLength = source.Length;
        var diagnostics = new List<PeDiagnostic>();
        var checksumAt = image.ChecksumFieldOffset();
        var certEntryAt = image.CertificateDirectoryEntryOffset();
        long headersEnd = image.SizeOfHeaders;
        var skipEnd = (certEntryAt ?? checksumAt) + (certEntryAt is null ? 4 : 8);
        if (headersEnd < skipEnd)
            return new(null, $"SizeOfHeaders 0x{headersEnd:x} ends before the header fields Authenticode skips (0x{skipEnd:x})");
        if (headersEnd > fileLength)
        {
            diagnostics.Add(Layout($"SizeOfHeaders 0x{headersEnd:x} is past the end of the file (0x{fileLength:x}); hashed to the end"));
            headersEnd = fileLength;
        }

        // Certificate table range; its "RVA" is a file offset.
        var dir = image.GetDirectory(4);
        long certStart = fileLength, certEnd = fileLength;
        var signed = dir.IsPresent;
        if (signed)
        {
            certStart = dir.VirtualAddress;
            certEnd = certStart + dir.Size;
            if (certEnd > fileLength)
            {
                diagnostics.Add(Layout($"certificate table [0x{certStart:x}, 0x{certEnd:x}) extends past the end of the file (0x{fileLength:x})"));
                certEnd = fileLength;
                if (certStart > fileLength) certStart = fileLength;
            }
            if ((certStart & 7) != 0)
                diagnostics.Add(Layout($"certificate table at 0x{certStart:x} is not 8-byte aligned"));
            if (certEnd < fileLength)
                diagnostics.Add(new PeDiagnostic(SigningDiagnosticCodes.DataAfterCertificateTable,
                    $"0x{fileLength - certEnd:x} bytes follow the certificate table; the certificate table must be last, and these bytes are not hashed"));
        }

        var sections = SortedRawRanges(image, fileLength, diagnostics);
        // The algorithm hashes each section's raw data, so overlapping headers hash the same bytes again: 1,024
        // headers over a whole file would hash it 1,024 times. No signing tool writes overlapping sections, so
        // past twice the file the image is refused a hash instead of costing sections × file size.
        var toHash = sections.Sum(r => r.End - r.Start);
        if (toHash > 2 * fileLength)
            return new(null, $"the section headers map {toHash:N0} bytes of raw data in a {fileLength:N0}-byte file (overlapping sections); not hashed");
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var hasher = new DualHasher(source, buffer, sha1, sha256);
            if (!hasher.Append(0, checksumAt)) return ShortRead();
            if (certEntryAt is { } entryAt)
            {
                if (!hasher.Append(checksumAt + 4, entryAt)) return ShortRead();
                if (!hasher.Append(entryAt + 8, headersEnd)) return ShortRead();
            }
            else if (!hasher.Append(checksumAt + 4, headersEnd)) return ShortRead();

            var end = headersEnd;
            foreach (var (start, stop) in sections)
            {
                if (!hasher.Append(start, stop)) return ShortRead();
                end = Math.Max(end, stop);
            }

            var padding = 0;
            if (signed)
            {
                if (certStart < end)
                    diagnostics.Add(Layout($"certificate table at 0x{certStart:x} starts before the end of the headers and sections (0x{end:x})"));
                else if (!hasher.Append(end, certStart)) return ShortRead();
            }
            else
            {
                if (!hasher.Append(end, fileLength)) return ShortRead();
                padding = (int)((8 - (fileLength & 7)) & 7);
                if (padding != 0) hasher.AppendZeros(padding);
            }
            return new(new AuthenticodeHash(
                Convert.ToHexStringLower(sha1.GetHashAndReset()),
                Convert.ToHexStringLower(sha256.GetHashAndReset()),
                padding, diagnostics), null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        static AuthenticodeHashResult ShortRead() => new(null, "the file ended early while hashing (it changed under us)");
    }

    private static PeDiagnostic Layout(string message) => new(SigningDiagnosticCodes.HashLayoutSuspicious, message);

    /// <summary>[start, end) of each section with raw data, clamped to the file, ordered by PointerToRawData then table index.</summary>
    private static List<(long Start, long End)> SortedRawRanges(PeImage image, long fileLength, List<PeDiagnostic> diagnostics)
    {
        var ranges = new List<(long Start, long End, int Index)>(image.Sections.Count);
        foreach (var s in image.Sections) // at most PeImage.MaxSections
        {
            if (s.RawSize == 0) continue;
            long start = s.RawPointer, end = start + s.RawSize;
            if (end > fileLength)
            {
                diagnostics.Add(Layout($"section {s.Index} '{s.Name}' raw data [0x{start:x}, 0x{end:x}) extends past the end of the file (0x{fileLength:x}); hashed to the end"));
                end = fileLength;
                if (start >= end) continue;
            }
            ranges.Add((start, end, s.Index));
        }
        ranges.Sort((a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : a.Index.CompareTo(b.Index));
        return ranges.ConvertAll(r => (r.Start, r.End));
    }

    /// <summary>Feeds byte ranges of the source to both hashes through one buffer.</summary>
    private readonly struct DualHasher(IImageSource source, byte[] buffer, IncrementalHash first, IncrementalHash second)
    {
        /// <summary>Hashes [start, end); false when the source returns fewer bytes than it claims to hold.</summary>
        public bool Append(long start, long end)
        {
            var pos = start;
            while (pos < end)
            {
                var want = (int)Math.Min(buffer.Length, end - pos);
                var n = source.Read(pos, buffer.AsSpan(0, want));
                if (n <= 0) return false;
                first.AppendData(buffer, 0, n);
                second.AppendData(buffer, 0, n);
                pos += n;
            }
            return true;
        }

        public void AppendZeros(int count)
        {
            Span<byte> zeros = stackalloc byte[8];
            zeros = zeros[..count];
            zeros.Clear();
            first.AppendData(zeros);
            second.AppendData(zeros);
        }
    }
}
