using System.Buffers.Binary;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Signing;
using FsCheck;
using FsCheck.Fluent;
using Xunit;
using static DriverAudit.Scanner.Tests.Signing.SigningTestData;

namespace DriverAudit.Scanner.Tests.Signing;

/// <summary>Patched copies of signed fixtures: every malformation gives a diagnostic, never an exception.</summary>
public sealed class HostileSignatureTests
{
    private static readonly byte[] SignedTest = Fixture("x64", "signed_test.sys");

    /// <summary>Writes the patched bytes to a temp file and reads them back through a FileImageSource, as the scanner does.</summary>
    private static (AuthenticodeInfo Info, AuthenticodeHashResult Hash) ReadFromFile(byte[] bytes)
    {
        using var temp = new TempDir();
        using var source = FileImageSource.Open(temp.File("hostile.sys", bytes));
        var image = PeImage.TryOpen(source).Image!;
        return (AuthenticodeSignatureReader.Read(image), AuthenticodeHasher.Compute(image));
    }

    private static byte[] Copy() => (byte[])SignedTest.Clone();

    [Fact]
    public void Certificate_table_pointing_outside_the_file()
    {
        var bytes = Copy();
        var (_, size) = CertificateTable(bytes);
        SetCertificateTable(bytes, bytes.Length + 0x1000, size);
        var (info, hash) = ReadFromFile(bytes);

        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.True(info.HasCertificateTable);
        Assert.False(info.IsSigned);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.CertificateTableMalformed && d.Message.Contains("past the end"));
        // The hash still covers the file (the bogus table excludes nothing) and says why it is suspicious.
        Assert.Contains(hash.Hash!.Diagnostics, d => d.Code == SigningDiagnosticCodes.HashLayoutSuspicious);
    }

    [Fact]
    public void Certificate_table_running_past_the_end_of_the_file()
    {
        var bytes = Copy();
        var (offset, size) = CertificateTable(bytes);
        SetCertificateTable(bytes, offset, size + 0x10000);
        var (info, hash) = ReadFromFile(bytes);
        // The WIN_CERTIFICATE inside is intact, so the signature still decodes; the table is reported.
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.CertificateTableMalformed);
        Assert.Equal(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), hash.Hash!.Sha256);
        Assert.Contains(hash.Hash.Diagnostics, d => d.Code == SigningDiagnosticCodes.HashLayoutSuspicious);
    }

    [Fact]
    public void WIN_CERTIFICATE_length_larger_than_the_table()
    {
        var bytes = Copy();
        var (offset, size) = CertificateTable(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)size + 8);
        var (info, _) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.Empty(info.Signatures);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.CertificateTableMalformed && d.Message.Contains("length"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(700)]
    [InlineData(1500)]
    public void Truncated_PKCS7_blob(int keep)
    {
        var (offset, _) = CertificateTable(SignedTest);
        var bytes = SignedTest[..(offset + 8 + keep)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)(8 + keep));
        SetCertificateTable(bytes, offset, 8 + keep);
        var (info, hash) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.Pkcs7Malformed);
        Assert.Equal(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), hash.Hash!.Sha256); // the hash does not depend on the table
    }

    [Fact]
    public void Garbage_bytes_of_type_PKCS_SIGNED_DATA()
    {
        var bytes = Copy();
        var (offset, size) = CertificateTable(bytes);
        new Random(1234).NextBytes(bytes.AsSpan(offset + 8, size - 8));
        var (info, _) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.Pkcs7Malformed);
    }

    [Fact]
    public void Garbage_inside_a_well_formed_outer_SEQUENCE()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier("1.2.840.113549.1.7.2"); // signedData, followed by nonsense
            writer.WriteInteger(42);
        }
        var (info, _) = ReadFromFile(Embed(Fixture("x64", "pool_modern.sys"), writer.Encode()));
        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.Pkcs7Malformed && d.Message.Contains("does not decode"));
    }

    [Fact]
    public void Other_certificate_types_are_skipped_and_other_revisions_reported()
    {
        var bytes = Copy();
        var (offset, _) = CertificateTable(bytes);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(offset + 6), 1); // WIN_CERT_TYPE_X509
        var (info, _) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Malformed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.UnsupportedCertificateType);

        bytes = Copy();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(offset + 4), 0x0100);
        (info, _) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.UnexpectedRevision);
    }

    [Fact]
    public void Non_zero_bytes_hidden_after_the_PKCS7_blob_are_reported()
    {
        var (offset, size) = CertificateTable(SignedTest);
        var payload = SignedTest[(offset + 8)..(offset + size)];
        var withHidden = payload.Concat("HIDDEN!!"u8.ToArray()).ToArray();
        var (info, hash) = ReadFromFile(Embed(Fixture("x64", "pool_modern.sys"), withHidden));
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.DataAfterPkcs7);
        Assert.True(info.Signatures[0].DigestMatches(hash.Hash)); // the signature itself is unaffected
    }

    [Fact]
    public void Data_after_the_certificate_table_is_not_hashed_and_is_reported()
    {
        var bytes = SignedTest.Concat(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }).ToArray();
        var (info, hash) = ReadFromFile(bytes);
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Equal(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), hash.Hash!.Sha256);
        Assert.Contains(hash.Hash.Diagnostics, d => d.Code == SigningDiagnosticCodes.DataAfterCertificateTable);
    }

    [Fact]
    public void SignedData_whose_content_is_not_SpcIndirectData()
    {
        var cms = new SignedCms(new ContentInfo("hello"u8.ToArray())); // id-data
        using var key = RSA.Create(2048);
        using var cert = SelfSigned("CN=Not Authenticode", key);
        cms.ComputeSignature(new CmsSigner(cert));
        var (info, _) = ReadFromFile(Embed(Fixture("x64", "pool_modern.sys"), cms.Encode()));
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status); // a signature, but not an Authenticode one
        var signature = Assert.Single(info.Signatures);
        Assert.Null(signature.ContentDigest);
        Assert.Equal("CN=Not Authenticode", signature.Signers[0].Subject);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.IndirectDataMalformed);
    }

    [Fact]
    public void SpcIndirectData_content_is_parsed_when_wrapped_in_an_OCTET_STRING_and_rejected_when_malformed()
    {
        var digest = Convert.FromHexString(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString()!);
        var good = new AsnWriter(AsnEncodingRules.DER);
        using (good.PushSequence())
        {
            using (good.PushSequence()) good.WriteObjectIdentifier(AuthenticodeOids.SpcPeImageData);
            using (good.PushSequence())
            {
                using (good.PushSequence()) good.WriteObjectIdentifier(AuthenticodeOids.Sha256);
                good.WriteOctetString(digest);
            }
        }
        using var key = RSA.Create(2048);
        using var cert = SelfSigned("CN=Windows Test Signing", key);
        foreach (var (content, shouldParse) in new[] { (good.Encode(), true), (new byte[] { 0x30, 0x03, 0x02, 0x01, 0x07 }, false) })
        {
            // .NET encodes non-data content CMS-style, inside an OCTET STRING.
            var cms = new SignedCms(new ContentInfo(new Oid(AuthenticodeOids.SpcIndirectData), content));
            cms.ComputeSignature(new CmsSigner(cert));
            var (info, hash) = ReadFromFile(Embed(Fixture("x64", "pool_modern.sys"), cms.Encode()));
            var signature = Assert.Single(info.Signatures);
            Assert.True(signature.Signers[0].IsTestCertificate); // "Windows Test" marker
            if (shouldParse)
            {
                Assert.Equal(hash.Hash!.Sha256, signature.ContentDigest);
                Assert.Empty(info.Diagnostics);
            }
            else
            {
                Assert.Null(signature.ContentDigest);
                Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.IndirectDataMalformed);
            }
        }
    }

    [FsCheck.Xunit.Property(MaxTest = 150)]
    public bool Random_corruption_of_the_blob_never_throws(NonNegativeInt position, byte value, PositiveInt count)
    {
        var (offset, size) = CertificateTable(SignedTest);
        var bytes = Copy();
        var at = offset + 8 + position.Get % (size - 8);
        var n = 1 + count.Get % 4;
        for (var i = 0; i < n && at + i < bytes.Length; i++) bytes[at + i] ^= (byte)(value | 1);
        var image = OpenFile(bytes);
        var info = AuthenticodeSignatureReader.Read(image);
        var hash = AuthenticodeHasher.Compute(image);
        return hash.Hash is not null
               && (info.Status == AuthenticodeStatus.Parsed || (info.Status == AuthenticodeStatus.Malformed && info.Diagnostics.Count > 0));
    }

    [FsCheck.Xunit.Property(MaxTest = 100)]
    public bool Random_payloads_never_throw(byte[] payload, bool asSequence)
    {
        payload ??= [];
        if (asSequence && payload.Length < 120) payload = [0x30, (byte)payload.Length, .. payload]; // get past the outer TLV check
        var info = AuthenticodeSignatureReader.Read(OpenFile(Embed(Fixture("x64", "pool_modern.sys"), payload)));
        return info.Status == AuthenticodeStatus.Malformed && info.Diagnostics.Count > 0;
    }

    [Fact]
    public void Header_claims_that_break_the_hash_layout_give_a_reason_or_a_diagnostic()
    {
        // SizeOfHeaders smaller than the fields Authenticode skips: no hash, a reason.
        var bytes = Fixture("x64", "pool_modern.sys");
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(OptionalHeader(bytes) + 60), 0x80);
        var result = AuthenticodeHasher.Compute(OpenFile(bytes));
        Assert.Null(result.Hash);
        Assert.Contains("SizeOfHeaders", result.Reason);

        // A section whose raw data runs past the end of the file: hashed to the end, reported.
        bytes = Fixture("x64", "pool_modern.sys");
        var image = OpenFile(bytes);
        var last = image.Sections.OrderBy(s => s.RawPointer).Last(s => s.RawSize > 0);
        var header = OptionalHeader(bytes) + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(OptionalHeader(bytes) - 4)) + 40 * last.Index;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(header + 16), 0x100000);
        result = AuthenticodeHasher.Compute(OpenFile(bytes));
        Assert.Contains(result.Hash!.Diagnostics, d => d.Code == SigningDiagnosticCodes.HashLayoutSuspicious && d.Message.Contains("section"));
    }

    private static X509Certificate2 SelfSigned(string subject, RSA key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }
}
