using System.Formats.Asn1;

namespace DriverAudit.Scanner.Signing;

/// <summary>
/// SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue, messageDigest DigestInfo }, where
/// SpcAttributeTypeAndOptionalValue ::= SEQUENCE { type OID, value ANY OPTIONAL } and
/// DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }.
/// </summary>
internal readonly record struct SpcIndirectData(string DataType, string DigestAlgorithm, string Digest)
{
    /// <summary>The longest digest accepted (SHA-512 is 64 bytes; anything far beyond is not a digest).</summary>
    private const int MaxDigestLength = 128;

    /// <summary>Parses the SignedData content; null and an error message when it is not well-formed.</summary>
    public static SpcIndirectData? TryParse(ReadOnlyMemory<byte> content, out string? error)
    {
        error = null;
        try
        {
            var outer = new AsnReader(content, AsnEncodingRules.BER);
            // PKCS#7 v1.5 puts the SEQUENCE itself in [0]; a CMS-style producer may wrap it in an OCTET STRING.
            if (outer.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString))
            {
                content = outer.ReadOctetString();
                outer.ThrowIfNotEmpty();
                outer = new AsnReader(content, AsnEncodingRules.BER);
            }
            var sequence = outer.ReadSequence();
            var data = sequence.ReadSequence();
            var dataType = data.ReadObjectIdentifier();
            var digestInfo = sequence.ReadSequence();
            var algorithm = digestInfo.ReadSequence().ReadObjectIdentifier();
            var digest = digestInfo.ReadOctetString();
            if (digest.Length == 0 || digest.Length > MaxDigestLength)
            {
                error = $"message digest of {digest.Length} bytes";
                return null;
            }
            return new SpcIndirectData(dataType, algorithm, Convert.ToHexStringLower(digest));
        }
        catch (AsnContentException e)
        {
            error = e.Message;
            return null;
        }
    }
}
