using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Security.Cryptography.Xml;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Signing;

/// <summary>
/// Decodes the PKCS#7 SignedData in each WIN_CERTIFICATE of type PKCS_SIGNED_DATA (2) of the certificate table
/// (<see cref="PeImage.Certificates"/>), and the nested signatures (1.3.6.1.4.1.311.2.4.1) of their signers.
/// Parsed, not trusted: nothing is verified against a trust store. Hostile input gives diagnostics, never an
/// exception: every blob is bounded by its WIN_CERTIFICATE, which is bounded by the table and the file, and the
/// number of signatures, signers, certificates and the nesting depth are capped.
/// </summary>
internal static class AuthenticodeSignatureReader
{
    public const ushort RevisionWinCert20 = 0x0200;
    public const int MaxBlobSize = 16 << 20;
    public const int MaxSignatures = 16;
    public const int MaxNestingDepth = 4;
    public const int MaxSignersPerSignature = 16;
    public const int MaxCertificatesPerSignature = 64;

    public static AuthenticodeInfo Read(PeImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var diagnostics = new List<PeDiagnostic>();
        var hasTable = image.GetDirectory(4).IsPresent;
        if (image.Layout != ImageLayout.File)
        {
            if (hasTable) diagnostics.Add(new(SigningDiagnosticCodes.NotFileLayout, "the certificate table is not mapped in a loaded image"));
            return new AuthenticodeInfo(AuthenticodeStatus.NotAvailable, hasTable, [], diagnostics);
        }
        if (!hasTable) return new AuthenticodeInfo(AuthenticodeStatus.Unsigned, false, [], diagnostics);

        var table = image.Certificates;
        if (table.Status != PeTableStatus.Ok)
        {
            var reasons = image.Diagnostics.Where(IsCertificateTableDiagnostic).Select(d => d.Message).ToList();
            diagnostics.Add(new(SigningDiagnosticCodes.CertificateTableMalformed,
                $"certificate table [0x{table.FileOffset:x}, +0x{table.Size:x}) is {table.Status}" + (reasons.Count > 0 ? ": " + string.Join("; ", reasons) : "")));
        }

        var context = new Context(diagnostics);
        var signatures = new List<AuthenticodeSignature>();
        foreach (var entry in table.Entries)
        {
            if (entry.CertificateType != PeCertificateEntry.TypePkcsSignedData)
            {
                context.Add(SigningDiagnosticCodes.UnsupportedCertificateType, $"WIN_CERTIFICATE at 0x{entry.Offset:x} has type {entry.CertificateType}, not PKCS_SIGNED_DATA (2); skipped");
                continue;
            }
            if (entry.Revision != RevisionWinCert20)
                context.Add(SigningDiagnosticCodes.UnexpectedRevision, $"WIN_CERTIFICATE at 0x{entry.Offset:x} has revision 0x{entry.Revision:x4}, not 0x0200");
            var payloadLength = (long)entry.Length - 8; // the table reader guarantees Length >= 8 and inside the table
            if (payloadLength > MaxBlobSize)
            {
                context.Add(SigningDiagnosticCodes.Capped, $"WIN_CERTIFICATE at 0x{entry.Offset:x} holds {payloadLength} bytes, more than {MaxBlobSize}; skipped");
                continue;
            }
            var payload = new byte[payloadLength];
            var got = image.ReadRaw(entry.Offset + 8, payload);
            if (got < payload.Length)
            {
                context.Add(SigningDiagnosticCodes.Pkcs7Malformed, $"WIN_CERTIFICATE at 0x{entry.Offset:x}: only {got} of {payload.Length} bytes readable");
                continue;
            }
            var signature = context.Decode(payload, entry.Offset, 0, $"WIN_CERTIFICATE at 0x{entry.Offset:x}");
            if (signature is not null) signatures.Add(signature);
        }

        var status = signatures.Count > 0 ? AuthenticodeStatus.Parsed : AuthenticodeStatus.Malformed;
        if (status == AuthenticodeStatus.Malformed && table.Entries.Count == 0 && table.Status == PeTableStatus.Ok)
            diagnostics.Add(new(SigningDiagnosticCodes.CertificateTableMalformed, "certificate table holds no WIN_CERTIFICATE"));
        return new AuthenticodeInfo(status, true, signatures, diagnostics);
    }

    private static bool IsCertificateTableDiagnostic(PeDiagnostic d) =>
        d.Code is PeDiagnosticCodes.CertificateTableOutsideFile or PeDiagnosticCodes.CertificateEntryMalformed
        || (d.Code == "reader-failure" && d.Message.StartsWith("certificate table", StringComparison.Ordinal));

    /// <summary>Per-image decoding state: diagnostics and the global signature budget.</summary>
    private sealed class Context(List<PeDiagnostic> diagnostics)
    {
        private int _decoded;

        public void Add(string code, string message) => diagnostics.Add(new PeDiagnostic(code, message));

        /// <summary>Decodes one SignedData blob (with zero padding allowed after it); null and a diagnostic when malformed.</summary>
        public AuthenticodeSignature? Decode(ReadOnlyMemory<byte> blob, long tableOffset, int depth, string where)
        {
            if (_decoded >= MaxSignatures)
            {
                Add(SigningDiagnosticCodes.Capped, $"{where}: more than {MaxSignatures} signatures; the rest are ignored");
                return null;
            }
            _decoded++;
            if (!TryMeasure(blob.Span, out var consumed))
            {
                Add(SigningDiagnosticCodes.Pkcs7Malformed, $"{where}: the PKCS#7 blob is not a complete ASN.1 SEQUENCE ({blob.Length} bytes; truncated or garbage)");
                return null;
            }
            var trailing = blob.Span[consumed..];
            if (trailing.ContainsAnyExcept((byte)0))
                Add(SigningDiagnosticCodes.DataAfterPkcs7, $"{where}: {trailing.Length} bytes after the PKCS#7 blob are not zero padding (data hidden in the certificate table)");

            var cms = new SignedCms();
            X509Certificate2Collection? certificates = null;
            try
            {
                cms.Decode(blob.Span[..consumed]);
                var contentType = cms.ContentInfo.ContentType.Value ?? "";
                string? dataType = null, digestAlgorithm = null, digest = null;
                if (contentType != AuthenticodeOids.SpcIndirectData)
                    Add(SigningDiagnosticCodes.IndirectDataMalformed, $"{where}: SignedData content type {contentType} is not SPC_INDIRECT_DATA ({AuthenticodeOids.SpcIndirectData})");
                else if (SpcIndirectData.TryParse(cms.ContentInfo.Content, out var error) is { } indirect)
                    (dataType, digestAlgorithm, digest) = (indirect.DataType, indirect.DigestAlgorithm, indirect.Digest);
                else
                    Add(SigningDiagnosticCodes.IndirectDataMalformed, $"{where}: SpcIndirectDataContent does not parse: {error}");

                certificates = cms.Certificates;
                var models = ReadCertificates(certificates, where);
                var signers = new List<AuthenticodeSigner>();
                var nested = new List<AuthenticodeSignature>();
                var index = 0;
                foreach (var signerInfo in cms.SignerInfos)
                {
                    if (index == MaxSignersPerSignature)
                    {
                        Add(SigningDiagnosticCodes.Capped, $"{where}: more than {MaxSignersPerSignature} signers; the rest are ignored");
                        break;
                    }
                    var signerWhere = $"{where}, signer {index++}";
                    if (ReadSigner(signerInfo, models, signerWhere) is { } signer) signers.Add(signer);
                    ReadNested(signerInfo, tableOffset, depth, signerWhere, nested);
                }
                return new AuthenticodeSignature(tableOffset, depth, contentType, dataType, digestAlgorithm, digest, signers,
                    models.ConvertAll(m => m.Model), nested);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // SignedCms and X509Certificate2 throw CryptographicException (and occasionally others) on hostile bytes.
                Add(SigningDiagnosticCodes.Pkcs7Malformed, $"{where}: PKCS#7 SignedData does not decode: {e.GetType().Name}: {e.Message}");
                return null;
            }
            finally
            {
                if (certificates is not null)
                    foreach (var c in certificates) c.Dispose();
            }
        }

        private List<(X509Certificate2 Certificate, AuthenticodeCertificate Model)> ReadCertificates(X509Certificate2Collection certificates, string where)
        {
            var list = new List<(X509Certificate2, AuthenticodeCertificate)>();
            foreach (var c in certificates)
            {
                if (list.Count == MaxCertificatesPerSignature)
                {
                    Add(SigningDiagnosticCodes.Capped, $"{where}: more than {MaxCertificatesPerSignature} certificates; the rest are ignored");
                    break;
                }
                try
                {
                    list.Add((c, ToModel(c)));
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Add(SigningDiagnosticCodes.SignerMalformed, $"{where}: certificate {list.Count} unreadable: {e.GetType().Name}: {e.Message}");
                }
            }
            return list;
        }

        private AuthenticodeSigner? ReadSigner(SignerInfo signerInfo, List<(X509Certificate2 Certificate, AuthenticodeCertificate Model)> certificates, string where)
        {
            try
            {
                string? idIssuer = null, idSerial = null;
                if (signerInfo.SignerIdentifier.Value is X509IssuerSerial issuerSerial)
                    (idIssuer, idSerial) = (issuerSerial.IssuerName, issuerSerial.SerialNumber);
                var signerCertificate = signerInfo.Certificate;
                var start = signerCertificate is null ? -1 : certificates.FindIndex(c => c.Certificate.RawData.AsSpan().SequenceEqual(signerCertificate.RawData));
                var chain = start < 0 ? [] : BuildChain(certificates, start);
                return new AuthenticodeSigner(chain.Count > 0 ? chain[0] : null, idIssuer, idSerial,
                    signerInfo.DigestAlgorithm.Value ?? "", chain, TestCertificatePolicy.IsTestCertificate(chain, idIssuer))
                {
                    SigningTime = SigningTimeOf(signerInfo),
                };
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Add(SigningDiagnosticCodes.SignerMalformed, $"{where}: unreadable: {e.GetType().Name}: {e.Message}");
                return null;
            }
        }

        /// <summary>
        /// The signer's own signingTime attribute, else its countersigner's (a legacy timestamp). Both are claims of the
        /// signing machine or the timestamp authority, not verified here. Null when neither is present or readable.
        /// </summary>
        private static DateTimeOffset? SigningTimeOf(SignerInfo signerInfo)
        {
            foreach (var attribute in signerInfo.SignedAttributes)
                foreach (var value in attribute.Values)
                    if (value is Pkcs9SigningTime time) return new DateTimeOffset(time.SigningTime.ToUniversalTime(), TimeSpan.Zero);
            foreach (var counter in signerInfo.CounterSignerInfos)
                foreach (var attribute in counter.SignedAttributes)
                    foreach (var value in attribute.Values)
                        if (value is Pkcs9SigningTime time) return new DateTimeOffset(time.SigningTime.ToUniversalTime(), TimeSpan.Zero);
            return null;
        }

        private void ReadNested(SignerInfo signerInfo, long tableOffset, int depth, string where, List<AuthenticodeSignature> nested)
        {
            try
            {
                foreach (var attribute in signerInfo.UnsignedAttributes)
                {
                    if (attribute.Oid.Value != AuthenticodeOids.NestedSignature) continue;
                    if (depth + 1 > MaxNestingDepth)
                    {
                        Add(SigningDiagnosticCodes.Capped, $"{where}: nested signatures deeper than {MaxNestingDepth}; ignored");
                        return;
                    }
                    var i = 0;
                    foreach (var value in attribute.Values)
                        if (Decode(value.RawData, tableOffset, depth + 1, $"{where}, nested signature {i++}") is { } signature)
                            nested.Add(signature);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Add(SigningDiagnosticCodes.NestedSignatureMalformed, $"{where}: nested signatures unreadable: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>Length of the leading BER SEQUENCE of <paramref name="blob"/>; false when there is none (TryReadEncodedValue still throws on some garbage).</summary>
    private static bool TryMeasure(ReadOnlySpan<byte> blob, out int consumed)
    {
        consumed = 0;
        try
        {
            return AsnDecoder.TryReadEncodedValue(blob, AsnEncodingRules.BER, out var tag, out _, out _, out consumed)
                && tag.HasSameClassAndValue(Asn1Tag.Sequence);
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    /// <summary>The certificate at <paramref name="start"/>, then its issuers by exact DER name match (first in blob order), no repeats.</summary>
    private static List<AuthenticodeCertificate> BuildChain(List<(X509Certificate2 Certificate, AuthenticodeCertificate Model)> certificates, int start)
    {
        var chain = new List<AuthenticodeCertificate>();
        var used = new bool[certificates.Count];
        var current = start;
        while (current >= 0 && !used[current]) // at most certificates.Count steps
        {
            used[current] = true;
            var (certificate, model) = certificates[current];
            chain.Add(model);
            var issuer = certificate.IssuerName.RawData;
            if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(issuer)) break; // self-issued: the top of the chain
            current = certificates.FindIndex(c => c.Certificate.SubjectName.RawData.AsSpan().SequenceEqual(issuer));
        }
        return chain;
    }

    private static AuthenticodeCertificate ToModel(X509Certificate2 c) => new(
        c.SubjectName.Name,
        NullIfEmpty(c.GetNameInfo(X509NameType.SimpleName, forIssuer: false)),
        c.IssuerName.Name,
        NullIfEmpty(c.GetNameInfo(X509NameType.SimpleName, forIssuer: true)),
        c.SerialNumber,
        c.Thumbprint,
        new DateTimeOffset(c.NotBefore.ToUniversalTime(), TimeSpan.Zero),
        new DateTimeOffset(c.NotAfter.ToUniversalTime(), TimeSpan.Zero),
        SelfSignedLater(c.RawData));

    /// <summary>The certificate objects are disposed after reading; the check re-loads the DER bytes if it is ever asked.</summary>
    private static Lazy<bool> SelfSignedLater(byte[] der) => new(() =>
    {
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(der);
            return TestCertificatePolicy.IsSelfSigned(certificate);
        }
        catch (CryptographicException)
        {
            return false;
        }
    });

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
