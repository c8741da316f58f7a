using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DriverAudit.Scanner.Signing;

/// <summary>How DriverAudit classifies signing certificates. Classification only: nothing here establishes trust.</summary>
public static class TestCertificatePolicy
{
    /// <summary>
    /// Name fragments of test-signing certificates, matched case-insensitively (ordinal) anywhere in a subject or
    /// issuer distinguished name: "WDKTestCert" (Visual Studio / WDK test certificates, "WDKTestCert user,1337..."),
    /// "Windows Test" and "Test Signing" (common hand-made test-signing names), "Microsoft Testing Root" (the
    /// Microsoft Testing Root Certificate Authority of prerelease builds).
    /// </summary>
    public static IReadOnlyList<string> TestNameMarkers { get; } = ["WDKTestCert", "Windows Test", "Test Signing", "Microsoft Testing Root"];

    /// <summary>
    /// A signer is a test certificate when the subject or the issuer of any certificate in its chain (the signer's
    /// certificate and the issuers the blob carries, <see cref="AuthenticodeSigner.Chain"/>) contains one of
    /// <see cref="TestNameMarkers"/>; when the blob does not carry the signer's certificate, the issuer named by the
    /// SignerInfo is checked instead. Self-signedness alone does NOT make a certificate a test certificate (a company
    /// may sign with its own root; that is reported separately as <see cref="AuthenticodeCertificate.SelfSigned"/> and
    /// <see cref="AuthenticodeSigner.ChainEndsSelfSigned"/>), and no list of commercial roots is consulted.
    /// </summary>
    public static bool IsTestCertificate(IReadOnlyList<AuthenticodeCertificate> chain, string? identifierIssuer)
    {
        if (chain.Count == 0) return HasTestMarker(identifierIssuer);
        foreach (var c in chain)
            if (HasTestMarker(c.Subject) || HasTestMarker(c.Issuer)) return true;
        return false;
    }

    /// <summary>True when <paramref name="name"/> contains one of <see cref="TestNameMarkers"/>.</summary>
    public static bool HasTestMarker(string? name)
    {
        if (string.IsNullOrEmpty(name)) return false;
        foreach (var m in TestNameMarkers)
            if (name.Contains(m, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>
    /// Self-signed: the subject and issuer names are byte-identical (DER) AND the certificate's signature verifies with
    /// its own public key (RSA PKCS#1 v1.5 or ECDSA, with SHA-1/256/384/512). For other signature algorithms (RSA-PSS,
    /// DSA, MD5) the key match falls back to authority key identifier == subject key identifier when both extensions
    /// are present. Anything unreadable counts as not self-signed.
    /// </summary>
    public static bool IsSelfSigned(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        try
        {
            if (!certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData)) return false;
            return VerifiesWithOwnKey(certificate) ?? KeyIdentifiersMatch(certificate);
        }
        catch (Exception e) when (e is CryptographicException or AsnContentException or ArgumentException or InvalidOperationException or NotSupportedException or FormatException)
        {
            return false;
        }
    }

    /// <summary>True/false when the signature algorithm is supported; null when it is not.</summary>
    private static bool? VerifiesWithOwnKey(X509Certificate2 certificate)
    {
        var reader = new AsnReader(certificate.RawData, AsnEncodingRules.BER);
        var cert = reader.ReadSequence();
        var tbs = cert.ReadEncodedValue();
        var algorithm = cert.ReadSequence().ReadObjectIdentifier();
        var signature = cert.ReadBitString(out _);
        switch (algorithm)
        {
            case "1.2.840.113549.1.1.5": return VerifyRsa(HashAlgorithmName.SHA1);
            case "1.2.840.113549.1.1.11": return VerifyRsa(HashAlgorithmName.SHA256);
            case "1.2.840.113549.1.1.12": return VerifyRsa(HashAlgorithmName.SHA384);
            case "1.2.840.113549.1.1.13": return VerifyRsa(HashAlgorithmName.SHA512);
            case "1.2.840.10045.4.1": return VerifyEcdsa(HashAlgorithmName.SHA1);
            case "1.2.840.10045.4.3.2": return VerifyEcdsa(HashAlgorithmName.SHA256);
            case "1.2.840.10045.4.3.3": return VerifyEcdsa(HashAlgorithmName.SHA384);
            case "1.2.840.10045.4.3.4": return VerifyEcdsa(HashAlgorithmName.SHA512);
            default: return null;
        }

        bool VerifyRsa(HashAlgorithmName hash)
        {
            using var rsa = certificate.GetRSAPublicKey();
            return rsa is not null && rsa.VerifyData(tbs.Span, signature, hash, RSASignaturePadding.Pkcs1);
        }

        bool VerifyEcdsa(HashAlgorithmName hash)
        {
            using var ecdsa = certificate.GetECDsaPublicKey();
            return ecdsa is not null && ecdsa.VerifyData(tbs.Span, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
        }
    }

    private static bool KeyIdentifiersMatch(X509Certificate2 certificate)
    {
        var ski = certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault()?.SubjectKeyIdentifierBytes;
        var aki = certificate.Extensions.OfType<X509AuthorityKeyIdentifierExtension>().FirstOrDefault()?.KeyIdentifier;
        return ski is { IsEmpty: false } s && aki is { IsEmpty: false } a && s.Span.SequenceEqual(a.Span);
    }
}
