namespace DriverAudit.Scanner.Signing;

/// <summary>Stable diagnostic codes of the Authenticode readers (tests and reports match on these, not on messages).</summary>
internal static class SigningDiagnosticCodes
{
    /// <summary>Loaded layout (a dump module): the certificate table and the file layout are gone.</summary>
    public const string NotFileLayout = "authenticode-not-file-layout";
    /// <summary>The certificate table directory or one of its WIN_CERTIFICATE headers is unusable.</summary>
    public const string CertificateTableMalformed = "authenticode-certificate-table-malformed";
    /// <summary>A WIN_CERTIFICATE of a type other than PKCS_SIGNED_DATA (2); it is skipped.</summary>
    public const string UnsupportedCertificateType = "authenticode-unsupported-certificate-type";
    /// <summary>WIN_CERTIFICATE revision other than 0x0200 (Windows accepts only 2.0); parsed anyway.</summary>
    public const string UnexpectedRevision = "authenticode-unexpected-revision";
    /// <summary>The PKCS#7 blob does not decode (truncated, garbage, not SignedData).</summary>
    public const string Pkcs7Malformed = "authenticode-pkcs7-malformed";
    /// <summary>Non-zero bytes between the end of the PKCS#7 blob and the end of its WIN_CERTIFICATE (hidden data).</summary>
    public const string DataAfterPkcs7 = "authenticode-data-after-pkcs7";
    /// <summary>The SignedData content is not SPC_INDIRECT_DATA, or its ASN.1 does not parse.</summary>
    public const string IndirectDataMalformed = "authenticode-indirect-data-malformed";
    /// <summary>A signer or certificate could not be read; the rest of the signature is kept.</summary>
    public const string SignerMalformed = "authenticode-signer-malformed";
    /// <summary>A nested signature (1.3.6.1.4.1.311.2.4.1) could not be read, or nesting/count caps were hit.</summary>
    public const string NestedSignatureMalformed = "authenticode-nested-signature-malformed";
    /// <summary>A cap (signatures, signers, certificates, blob size) was reached; the rest is ignored.</summary>
    public const string Capped = "authenticode-capped";

    /// <summary>Hashing: SizeOfHeaders, a section or the certificate table is inconsistent with the file.</summary>
    public const string HashLayoutSuspicious = "authenticode-hash-layout-suspicious";
    /// <summary>Hashing: bytes follow the certificate table; they are not part of the Authenticode hash.</summary>
    public const string DataAfterCertificateTable = "authenticode-data-after-certificate-table";
}
