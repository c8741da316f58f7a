using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Signing;

/// <summary>What <see cref="AuthenticodeSignatureReader.Read"/> found.</summary>
internal enum AuthenticodeStatus
{
    /// <summary>No certificate table (data directory 4 is empty).</summary>
    Unsigned,
    /// <summary>At least one PKCS#7 signature was decoded (there may still be diagnostics).</summary>
    Parsed,
    /// <summary>A certificate table is declared but no signature in it could be decoded; see the diagnostics.</summary>
    Malformed,
    /// <summary>Loaded layout (dump module): the certificate table is not in memory, so nothing can be said.</summary>
    NotAvailable,
}

/// <summary>
/// The Authenticode signatures of an image, parsed and NOT verified: no chain is built against a trust store, no
/// signature is checked, and a signature whose digest does not match the file is still reported (compare
/// <see cref="AuthenticodeSignature.ContentDigest"/> with <see cref="AuthenticodeHasher"/>).
/// </summary>
/// <param name="Signatures">Top-level signatures in certificate-table order (normally one); nested ones hang below.</param>
internal sealed record AuthenticodeInfo(AuthenticodeStatus Status, bool HasCertificateTable, IReadOnlyList<AuthenticodeSignature> Signatures, IReadOnlyList<PeDiagnostic> Diagnostics)
{
    /// <summary>At least one signature was decoded.</summary>
    public bool IsSigned => Signatures.Count > 0;

    /// <summary>Every signature, depth first: each top-level signature followed by its nested ones.</summary>
    public IEnumerable<AuthenticodeSignature> AllSignatures => Signatures.SelectMany(s => s.SelfAndNested());

    /// <summary>Every signer of every signature (primary first), in <see cref="AllSignatures"/> order.</summary>
    public IEnumerable<AuthenticodeSigner> AllSigners => AllSignatures.SelectMany(s => s.Signers);

    /// <summary>The first signer of the first signature (what Explorer shows as "the" signer), or null.</summary>
    public AuthenticodeSigner? PrimarySigner => Signatures.Count > 0 && Signatures[0].Signers.Count > 0 ? Signatures[0].Signers[0] : null;

    /// <summary>Any signer of any signature (nested included) is a test certificate (<see cref="AuthenticodeSigner.IsTestCertificate"/>).</summary>
    public bool IsTestSigned => AllSigners.Any(s => s.IsTestCertificate);
}

/// <summary>One PKCS#7 SignedData: a WIN_CERTIFICATE payload, or a nested signature inside one.</summary>
/// <param name="TableOffset">File offset of the WIN_CERTIFICATE that holds it (for nested signatures, the outer one's).</param>
/// <param name="NestingDepth">0 for a WIN_CERTIFICATE payload, 1 for a signature nested in it, and so on.</param>
/// <param name="ContentType">SignedData content type OID; <see cref="AuthenticodeOids.SpcIndirectData"/> for Authenticode.</param>
/// <param name="IndirectDataType">SpcIndirectDataContent.data.type (<see cref="AuthenticodeOids.SpcPeImageData"/> for PE), or null.</param>
/// <param name="ContentDigestAlgorithm">OID of the algorithm of the image hash the signature claims, or null when unparsed.</param>
/// <param name="ContentDigest">The image hash the signature claims (SpcIndirectDataContent.messageDigest), lowercase hex, or null.</param>
/// <param name="Certificates">Every certificate carried in the blob, in blob order.</param>
internal sealed record AuthenticodeSignature(
    long TableOffset,
    int NestingDepth,
    string ContentType,
    string? IndirectDataType,
    string? ContentDigestAlgorithm,
    string? ContentDigest,
    IReadOnlyList<AuthenticodeSigner> Signers,
    IReadOnlyList<AuthenticodeCertificate> Certificates,
    IReadOnlyList<AuthenticodeSignature> Nested)
{
    /// <summary>"sha1", "sha256", ... for <see cref="ContentDigestAlgorithm"/>, or null.</summary>
    public string? ContentDigestAlgorithmName => AuthenticodeOids.HashName(ContentDigestAlgorithm);

    /// <summary>
    /// Whether the claimed digest equals the computed one for the same algorithm; null when either is missing or the
    /// algorithm is not one <see cref="AuthenticodeHasher"/> computes (SHA-1, SHA-256).
    /// </summary>
    public bool? DigestMatches(AuthenticodeHash? hash)
    {
        var computed = hash?.ForAlgorithm(ContentDigestAlgorithm);
        if (computed is null || ContentDigest is null) return null;
        return string.Equals(computed, ContentDigest, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>This signature, then its nested signatures depth first.</summary>
    public IEnumerable<AuthenticodeSignature> SelfAndNested()
    {
        yield return this;
        foreach (var n in Nested)
            foreach (var s in n.SelfAndNested())
                yield return s;
    }
}

/// <summary>
/// One SignerInfo. Name, serial and validity come from the signer's certificate when the blob carries it;
/// otherwise only the issuer and serial of the SignerInfo's identifier are known.
/// </summary>
/// <param name="Certificate">The signer's certificate, or null when the blob does not carry it.</param>
/// <param name="IdentifierIssuer">Issuer named by the SignerInfo (IssuerAndSerialNumber), or null (subject key identifier form).</param>
/// <param name="IdentifierSerialNumber">Serial named by the SignerInfo, uppercase hex, or null.</param>
/// <param name="DigestAlgorithm">OID of the SignerInfo digest algorithm.</param>
/// <param name="Chain">
/// The signer's certificate followed by its issuers as far as the blob carries them, matched by issuer name (first
/// match in blob order, no repeats, stops at a self-signed certificate). Empty when the signer certificate is absent.
/// </param>
/// <param name="IsTestCertificate">See <see cref="TestCertificatePolicy.IsTestCertificate"/>.</param>
internal sealed record AuthenticodeSigner(
    AuthenticodeCertificate? Certificate,
    string? IdentifierIssuer,
    string? IdentifierSerialNumber,
    string DigestAlgorithm,
    IReadOnlyList<AuthenticodeCertificate> Chain,
    bool IsTestCertificate)
{
    /// <summary>The signingTime the signer (or a countersigning timestamp) claims, UTC; null when absent.</summary>
    public DateTimeOffset? SigningTime { get; init; }
    public string? Subject => Certificate?.Subject;
    public string? CommonName => Certificate?.SubjectCommonName;
    public string? Issuer => Certificate?.Issuer ?? IdentifierIssuer;
    public string? SerialNumber => Certificate?.SerialNumber ?? IdentifierSerialNumber;
    public string? Thumbprint => Certificate?.Thumbprint;
    public DateTimeOffset? NotBefore => Certificate?.NotBefore;
    public DateTimeOffset? NotAfter => Certificate?.NotAfter;
    public bool SelfSigned => Certificate?.SelfSigned ?? false;
    /// <summary>"sha1", "sha256", ... for <see cref="DigestAlgorithm"/>, or null.</summary>
    public string? DigestAlgorithmName => AuthenticodeOids.HashName(DigestAlgorithm);
    /// <summary>The last certificate of <see cref="Chain"/> is self-signed: the blob carries its own root.</summary>
    public bool ChainEndsSelfSigned => Chain.Count > 0 && Chain[^1].SelfSigned;
}

/// <summary>One X.509 certificate from a signature blob.</summary>
/// <param name="Subject">Distinguished name as .NET formats it (most specific first: "CN=..., O=..., C=US").</param>
/// <param name="SubjectCommonName">The CN (or .NET's simple-name fallback), or null.</param>
/// <param name="SerialNumber">Uppercase hex, big-endian, as in the certificate.</param>
/// <param name="Thumbprint">SHA-1 of the DER certificate, uppercase hex (as certmgr and signtool show it).</param>
/// <param name="NotBefore">UTC.</param>
/// <param name="NotAfter">UTC.</param>
/// <param name="SelfSignedCheck">Computes <see cref="SelfSigned"/> (a signature verification) on first read.</param>
internal sealed record AuthenticodeCertificate(
    string Subject,
    string? SubjectCommonName,
    string Issuer,
    string? IssuerCommonName,
    string SerialNumber,
    string Thumbprint,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    Lazy<bool> SelfSignedCheck)
{
    /// <summary>
    /// See <see cref="TestCertificatePolicy.IsSelfSigned"/>. Lazy: verifying a signature costs far more than
    /// reading a certificate (and OpenSSL serialises it across threads), and most scans never ask.
    /// </summary>
    public bool SelfSigned => SelfSignedCheck.Value;
}
