using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Signing;

/// <summary>
/// Per-image, lazily computed signing facts for the fact provider: nothing is read until a property is first asked
/// for, then the result is cached. Not thread-safe, like <see cref="PeImage"/>.
/// </summary>
internal sealed class ImageSigning(PeImage image)
{
    private AuthenticodeInfo? _signatures;
    private AuthenticodeHashResult? _hash;

    public PeImage Image { get; } = image ?? throw new ArgumentNullException(nameof(image));

    /// <summary>The decoded certificate table (<see cref="AuthenticodeSignatureReader.Read"/>).</summary>
    public AuthenticodeInfo Signatures => _signatures ??= AuthenticodeSignatureReader.Read(Image);

    /// <summary>The Authenticode SHA-1/SHA-256 of the file (<see cref="AuthenticodeHasher.Compute"/>); streams the whole file once.</summary>
    public AuthenticodeHashResult Hash => _hash ??= AuthenticodeHasher.Compute(Image);

    /// <summary>
    /// Whether the primary signature's claimed image digest equals the computed one (false: the file was modified after
    /// signing); null when unsigned, unparsed, or the algorithm is not SHA-1/SHA-256. Computes the hash.
    /// </summary>
    public bool? PrimaryDigestMatches =>
        Signatures.Signatures.Count > 0 ? Signatures.Signatures[0].DigestMatches(Hash.Hash) : null;
}
