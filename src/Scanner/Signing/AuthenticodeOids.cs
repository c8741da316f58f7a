namespace DriverAudit.Scanner.Signing;

/// <summary>Object identifiers used by Authenticode, and friendly names for the hash algorithms.</summary>
internal static class AuthenticodeOids
{
    /// <summary>SPC_INDIRECT_DATA_OBJID: the SignedData content type of an Authenticode signature.</summary>
    public const string SpcIndirectData = "1.3.6.1.4.1.311.2.1.4";
    /// <summary>SPC_PE_IMAGE_DATAOBJ: SpcIndirectDataContent.data.type for PE images.</summary>
    public const string SpcPeImageData = "1.3.6.1.4.1.311.2.1.15";
    /// <summary>szOID_NESTED_SIGNATURE: unsigned signer attribute holding further (nested) signatures.</summary>
    public const string NestedSignature = "1.3.6.1.4.1.311.2.4.1";

    public const string Sha1 = "1.3.14.3.2.26";
    public const string Sha256 = "2.16.840.1.101.3.4.2.1";
    public const string Sha384 = "2.16.840.1.101.3.4.2.2";
    public const string Sha512 = "2.16.840.1.101.3.4.2.3";
    public const string Md5 = "1.2.840.113549.2.5";

    /// <summary>
    /// "md5", "sha1", "sha256", "sha384" or "sha512" for a digest-algorithm OID (or for one of those names, any case);
    /// null otherwise.
    /// </summary>
    public static string? HashName(string? oidOrName) => oidOrName?.ToLowerInvariant() switch
    {
        Md5 or "md5" => "md5",
        Sha1 or "sha1" or "sha-1" => "sha1",
        Sha256 or "sha256" or "sha-256" => "sha256",
        Sha384 or "sha384" or "sha-384" => "sha384",
        Sha512 or "sha512" or "sha-512" => "sha512",
        _ => null,
    };
}
