using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DriverAudit.Scanner.Signing;

/// <summary>How DriverAudit classifies signing certificates. Classification only: nothing here establishes trust.</summary>
internal static class TestCertificatePolicy
{
    /// <summary>
    /// Name patterns of test-signing certificates, matched case-insensitively, on word boundaries, anywhere in a
    /// subject or issuer distinguished name: "WDKTestCert" (Visual Studio / WDK test certificates, "WDKTestCert
    /// user,1337..."); "TEST ONLY" (Microsoft's partner test PKI, "Windows Phone OEM Test Cert 2013 (TEST ONLY)");
    /// "(Test)" ("Contoso.com(Test)", the name makecert samples and vendors' lab certificates use); "Test Cert",
    /// "Test Certificate", "Test Signing" (hand-made test-signing names); "Windows Test"; "Microsoft Test Root" and
    /// "Microsoft Testing Root" (the Microsoft Test Root Authority and Testing Root Certificate Authority of
    /// prerelease builds); "Test Root".
    /// </summary>
    public static IReadOnlyList<string> TestNamePatterns { get; } =
    [
        @"WDKTestCert", @"\bTEST ONLY\b", @"\(Test\)", @"\bTest[ -]?(Cert|Certificate|Signing)\b", @"\bWindows Test\b",
        @"\bMicrosoft Test(ing)? Root\b", @"\bTest(ing)? Root\b",
    ];

    private static readonly System.Text.RegularExpressions.Regex TestName = new(
        string.Join("|", TestNamePatterns.Select(p => $"(?:{p})")),
        System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant
        | System.Text.RegularExpressions.RegexOptions.NonBacktracking);

    /// <summary>
    /// A signer is a test certificate when the subject or the issuer of any certificate in its chain (the signer's
    /// certificate and the issuers the blob carries, <see cref="AuthenticodeSigner.Chain"/>) matches one of
    /// <see cref="TestNamePatterns"/>, or when the signer's certificate is a self-signed leaf with no chain (the only
    /// certificate of its chain, issued by itself: what makecert / New-SelfSignedCertificate test certificates are;
    /// Windows loads a driver signed only so with test signing on). When the blob does not carry the signer's
    /// certificate, the issuer named by the SignerInfo is checked instead. No list of commercial roots is consulted.
    /// </summary>
    public static bool IsTestCertificate(IReadOnlyList<AuthenticodeCertificate> chain, string? identifierIssuer)
    {
        if (chain.Count == 0) return HasTestMarker(identifierIssuer);
        foreach (var c in chain)
            if (HasTestMarker(c.Subject) || HasTestMarker(c.Issuer)) return true;
        return chain.Count == 1 && chain[0].SelfSigned;
    }

    /// <summary>True when <paramref name="name"/> matches one of <see cref="TestNamePatterns"/>.</summary>
    public static bool HasTestMarker(string? name) => !string.IsNullOrEmpty(name) && TestName.IsMatch(name);

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
