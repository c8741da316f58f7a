using System.Security.Cryptography;
using System.Text.Json;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Signing;
using DriverAudit.Scanner.Tests.Images;
using Xunit;
using static DriverAudit.Scanner.Tests.Signing.SigningTestData;

namespace DriverAudit.Scanner.Tests.Signing;

/// <summary>
/// Signatures and Authenticode hashes of real signed files against osslsigncode/openssl oracles
/// (tests/fixtures/expected/signatures.json and Signing/Data/oracle.json).
/// </summary>
public sealed class AuthenticodeFixtureTests
{
    public static TheoryData<string> SignedFixtures()
    {
        var data = new TheoryData<string>();
        foreach (var s in Signatures.GetProperty("signed").EnumerateArray()) data.Add(s.GetProperty("file").GetString()!);
        return data;
    }

    private static JsonElement SignedOracle(string file) =>
        Signatures.GetProperty("signed").EnumerateArray().Single(s => s.GetProperty("file").GetString() == file);

    private static byte[] FixtureFile(string relative) => File.ReadAllBytes(Path.Combine(RepoPaths.Fixtures, "bin", relative));

    [Theory]
    [MemberData(nameof(SignedFixtures))]
    public void Signer_of_a_signed_fixture_matches_openssl(string file)
    {
        var oracle = SignedOracle(file);
        var certOracle = Oracle.GetProperty("fixtureCertificates").GetProperty(file);
        var info = AuthenticodeSignatureReader.Read(OpenFile(FixtureFile(file)));

        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Empty(info.Diagnostics);
        var signature = Assert.Single(info.Signatures);
        Assert.Equal(AuthenticodeOids.SpcIndirectData, signature.ContentType);
        Assert.Equal(AuthenticodeOids.SpcPeImageData, signature.IndirectDataType);
        Assert.Empty(signature.Nested);
        var signer = Assert.Single(signature.Signers);
        Assert.Same(signer, info.PrimarySigner);

        Assert.Equal(oracle.GetProperty("signerCommonName").GetString(), signer.CommonName);
        Assert.Equal(NameAttributes(oracle.GetProperty("signerSubject").GetString()!), NameAttributes(signer.Subject!));
        Assert.Equal(NameAttributes(oracle.GetProperty("issuer").GetString()!), NameAttributes(signer.Issuer!));
        Assert.Equal(oracle.GetProperty("selfSigned").GetBoolean(), signer.SelfSigned);
        Assert.Equal(oracle.GetProperty("isTestCertificate").GetBoolean(), signer.IsTestCertificate);
        Assert.Equal(oracle.GetProperty("isTestCertificate").GetBoolean(), info.IsTestSigned);
        Assert.Equal(certOracle.GetProperty("serial").GetString(), signer.SerialNumber);
        Assert.Equal(certOracle.GetProperty("serial").GetString(), signer.IdentifierSerialNumber);
        Assert.Equal(certOracle.GetProperty("thumbprint").GetString(), signer.Thumbprint);
        Assert.Equal(DateTimeOffset.Parse(certOracle.GetProperty("notBefore").GetString()!), signer.NotBefore);
        Assert.Equal(DateTimeOffset.Parse(certOracle.GetProperty("notAfter").GetString()!), signer.NotAfter);
        Assert.Equal("sha256", signer.DigestAlgorithmName);
        // The blob carries only the self-signed certificate: it is the whole chain.
        Assert.Equal([signer.Certificate!], signer.Chain);
        Assert.True(signer.ChainEndsSelfSigned);
    }

    [Theory]
    [MemberData(nameof(SignedFixtures))]
    public void Computed_hash_equals_the_signed_digest_and_the_oracle(string file)
    {
        var image = OpenFile(FixtureFile(file));
        var signing = new ImageSigning(image);
        var hash = Assert.IsType<AuthenticodeHash>(signing.Hash.Hash);
        var signature = Assert.Single(signing.Signatures.Signatures);

        Assert.Equal(SignedOracle(file).GetProperty("authenticodeSha256").GetString(), hash.Sha256);
        Assert.Equal("sha256", signature.ContentDigestAlgorithmName);
        Assert.Equal(hash.Sha256, signature.ContentDigest);
        Assert.True(signature.DigestMatches(hash));
        Assert.True(signing.PrimaryDigestMatches);
        Assert.Equal(0, hash.PaddingBytes);
        Assert.Empty(hash.Diagnostics);
    }

    [Fact]
    public void The_unsigned_source_hashes_to_the_same_Authenticode_digests()
    {
        var unsigned = AuthenticodeHasher.Compute(OpenFile(Fixture("x64", "pool_modern.sys"))).Hash!;
        Assert.Equal(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), unsigned.Sha256);
        Assert.Equal(Oracle.GetProperty("poolModernAuthenticodeSha1").GetString(), unsigned.Sha1);
        foreach (var file in new[] { "x64/signed_test.sys", "x64/signed_release.sys" })
        {
            var signed = AuthenticodeHasher.Compute(OpenFile(FixtureFile(file))).Hash!;
            Assert.Equal(unsigned.Sha256, signed.Sha256);
            Assert.Equal(unsigned.Sha1, signed.Sha1);
        }
        // ...while the plain file hashes differ.
        Assert.NotEqual(Signatures.GetProperty("signed")[0].GetProperty("sha256").GetString(),
            Signatures.GetProperty("signed")[0].GetProperty("unsignedSha256").GetString());
    }

    [Theory]
    [InlineData("x64", "pool_modern.sys")]
    [InlineData("x64", "version_pdb.sys")]
    [InlineData("x86", "pool_modern.sys")]
    [InlineData("x86", "primitives.sys")]
    public void An_unsigned_fixture_has_no_signature(string arch, string name)
    {
        var info = AuthenticodeSignatureReader.Read(OpenFile(Fixture(arch, name)));
        Assert.Equal(AuthenticodeStatus.Unsigned, info.Status);
        Assert.False(info.HasCertificateTable);
        Assert.False(info.IsSigned);
        Assert.False(info.IsTestSigned);
        Assert.Null(info.PrimarySigner);
        Assert.Empty(info.Diagnostics);
    }

    public static TheoryData<string> EveryPeFixture()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin"), "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
        {
            using var source = FileImageSource.Open(f);
            if (PeImage.TryOpen(source).Success) data.Add(Path.GetRelativePath(Path.Combine(RepoPaths.Fixtures, "bin"), f).Replace('\\', '/'));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryPeFixture))]
    public void Streaming_hash_agrees_with_a_whole_file_reference_on_every_fixture(string file)
    {
        var bytes = FixtureFile(file);
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", file));
        var result = AuthenticodeHasher.Compute(PeImage.TryOpen(source).Image!);
        var hash = Assert.IsType<AuthenticodeHash>(result.Hash);
        Assert.Equal(Convert.ToHexStringLower(ReferenceAuthenticode(bytes, SHA1.Create())), hash.Sha1);
        Assert.Equal(Convert.ToHexStringLower(ReferenceAuthenticode(bytes, SHA256.Create())), hash.Sha256);
    }

    [Fact]
    public void Dual_signed_file_exposes_the_nested_signature_and_the_chain()
    {
        var oracle = Oracle.GetProperty("nested_dual.sys");
        var signing = new ImageSigning(OpenFile(Data("nested_dual.sys")));
        var info = signing.Signatures;
        var hash = signing.Hash.Hash!;
        Assert.Equal(AuthenticodeStatus.Parsed, info.Status);
        Assert.Empty(info.Diagnostics);

        var primary = Assert.Single(info.Signatures);
        var p = oracle.GetProperty("primary");
        Assert.Equal(p.GetProperty("digestAlgorithm").GetString(), primary.ContentDigestAlgorithmName);
        Assert.Equal(p.GetProperty("digest").GetString(), primary.ContentDigest);
        Assert.Equal(hash.Sha1, primary.ContentDigest); // SHA-1 signature: the SHA-1 authentihash
        Assert.True(primary.DigestMatches(hash));
        var signer = Assert.Single(primary.Signers);
        Assert.Equal(p.GetProperty("signerCommonName").GetString(), signer.CommonName);
        Assert.Equal(p.GetProperty("issuerCommonName").GetString(), signer.Certificate!.IssuerCommonName);
        Assert.Equal(p.GetProperty("signerSerial").GetString(), signer.SerialNumber);
        Assert.Equal(p.GetProperty("signerThumbprint").GetString(), signer.Thumbprint);
        Assert.Equal(DateTimeOffset.Parse(p.GetProperty("notBefore").GetString()!), signer.NotBefore);
        Assert.Equal(DateTimeOffset.Parse(p.GetProperty("notAfter").GetString()!), signer.NotAfter);
        Assert.Equal("sha1", signer.DigestAlgorithmName);
        Assert.False(signer.SelfSigned); // issued by the CA, not by itself
        Assert.False(signer.IsTestCertificate);
        Assert.Equal(2, primary.Certificates.Count);
        Assert.Equal(2, signer.Chain.Count);
        Assert.Equal(p.GetProperty("rootThumbprint").GetString(), signer.Chain[1].Thumbprint);
        Assert.True(signer.Chain[1].SelfSigned);
        Assert.True(signer.ChainEndsSelfSigned);

        var nested = Assert.Single(primary.Nested);
        var n = oracle.GetProperty("nested");
        Assert.Equal(1, nested.NestingDepth);
        Assert.Equal(n.GetProperty("digestAlgorithm").GetString(), nested.ContentDigestAlgorithmName);
        Assert.Equal(n.GetProperty("digest").GetString(), nested.ContentDigest);
        Assert.Equal(hash.Sha256, nested.ContentDigest);
        var nestedSigner = Assert.Single(nested.Signers);
        Assert.Equal(n.GetProperty("signerCommonName").GetString(), nestedSigner.CommonName);
        Assert.Equal(n.GetProperty("signerSerial").GetString(), nestedSigner.SerialNumber);
        Assert.Equal(n.GetProperty("signerThumbprint").GetString(), nestedSigner.Thumbprint);
        Assert.True(nestedSigner.SelfSigned); // ECDSA P-256 self-signature verified
        Assert.True(nestedSigner.IsTestCertificate);

        Assert.Equal([primary, nested], info.AllSignatures);
        Assert.True(info.IsTestSigned); // through the nested signature only
        Assert.Same(signer, info.PrimarySigner);
    }

    [Fact]
    public void Unsigned_file_of_unaligned_length_hashes_with_the_padding_its_signature_will_cover()
    {
        var expected = Oracle.GetProperty("padded_signed.sys").GetProperty("authenticodeSha256").GetString();
        var signed = new ImageSigning(OpenFile(Data("padded_signed.sys")));
        Assert.Equal(expected, signed.Hash.Hash!.Sha256);
        Assert.Equal(expected, signed.Signatures.Signatures[0].ContentDigest);

        using var temp = new TempDir();
        var unsignedBytes = Fixture("x64", "pool_modern.sys").Concat("abcde"u8.ToArray()).ToArray();
        using var source = FileImageSource.Open(temp.File("unaligned.sys", unsignedBytes));
        var unsigned = AuthenticodeHasher.Compute(PeImage.TryOpen(source).Image!).Hash!;
        Assert.Equal(3, unsigned.PaddingBytes);
        Assert.Equal(expected, unsigned.Sha256);
    }

    [Fact]
    public void A_byte_changed_after_signing_breaks_the_digest_match()
    {
        var bytes = Fixture("x64", "signed_test.sys");
        var image = OpenFile(bytes);
        var text = image.Sections.First(s => s.Name == ".text");
        bytes = (byte[])bytes.Clone();
        bytes[text.RawPointer + 0x10] ^= 0xFF;
        var signing = new ImageSigning(OpenFile(bytes));
        Assert.False(signing.PrimaryDigestMatches);
        Assert.NotEqual(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), signing.Hash.Hash!.Sha256);
        // The claim itself is unchanged: still the original digest.
        Assert.Equal(Signatures.GetProperty("unsignedAuthenticodeSha256").GetString(), signing.Signatures.Signatures[0].ContentDigest);
    }

    [Fact]
    public void Checksum_and_certificate_directory_are_excluded_from_the_hash()
    {
        var bytes = Fixture("x64", "pool_modern.sys");
        var before = AuthenticodeHasher.Compute(OpenFile(bytes)).Hash!;
        var patched = (byte[])bytes.Clone();
        patched[OptionalHeader(patched) + 64] ^= 0x5A; // CheckSum
        Assert.Equal(before.Sha256, AuthenticodeHasher.Compute(OpenFile(patched)).Hash!.Sha256);
        patched[OptionalHeader(patched) + 8] ^= 0x01;  // SizeOfInitializedData: hashed
        Assert.NotEqual(before.Sha256, AuthenticodeHasher.Compute(OpenFile(patched)).Hash!.Sha256);
    }

    [Fact]
    public void Loaded_images_have_no_hash_and_no_readable_signature()
    {
        var image = Open(Fixture("x64", "signed_test.sys"), ImageLayout.Loaded);
        var hash = AuthenticodeHasher.Compute(image);
        Assert.Null(hash.Hash);
        Assert.Contains("file layout", hash.Reason);
        var info = AuthenticodeSignatureReader.Read(image);
        Assert.Equal(AuthenticodeStatus.NotAvailable, info.Status);
        Assert.True(info.HasCertificateTable);
        Assert.Contains(info.Diagnostics, d => d.Code == SigningDiagnosticCodes.NotFileLayout);
    }

    [Fact]
    public void Nothing_is_computed_until_asked()
    {
        // A 1 MiB overlay makes the file much larger than the header and certificate reads.
        var (offset, size) = CertificateTable(Fixture("x64", "signed_test.sys"));
        var payload = Fixture("x64", "signed_test.sys")[(offset + 8)..(offset + size)];
        var big = Embed(Fixture("x64", "pool_modern.sys").Concat(new byte[1 << 20]).ToArray(), payload);
        var source = new CountingSource(big);
        var image = PeImage.TryOpen(source).Image!;
        var afterOpen = source.BytesRead;
        var signing = new ImageSigning(image);
        Assert.Equal(afterOpen, source.BytesRead);
        _ = signing.Signatures;
        var afterSignatures = source.BytesRead;
        Assert.True(afterSignatures < 64 * 1024, $"reading the signature read {afterSignatures} bytes");
        Assert.Equal(AuthenticodeStatus.Parsed, signing.Signatures.Status);
        _ = signing.Hash;
        Assert.True(source.BytesRead - afterSignatures >= 1 << 20, "the hash streams the file");
        Assert.False(signing.PrimaryDigestMatches); // the overlay is hashed, so the old claim no longer matches
        var afterHash = source.BytesRead;
        _ = signing.Hash;
        _ = signing.Signatures;
        Assert.Equal(afterHash, source.BytesRead); // cached
    }
}
