using DriverAudit.Scanner.Signing;
using Xunit;
using static DriverAudit.Scanner.Tests.Signing.SigningTestData;

namespace DriverAudit.Scanner.Tests.Signing;

/// <summary>
/// Two drivers signed by osslsigncode through the same CA-issued chain (make-data.sh): the leaf of test_only.sys is
/// named like Microsoft's partner test PKI ("… (TEST ONLY)"), the leaf of partner_signed.sys is not. Nothing is
/// self-signed, so only the name can tell the test certificate.
/// </summary>
public sealed class TestOnlyCertificateTests
{
    [Fact]
    public void A_TEST_ONLY_leaf_in_a_CA_chain_is_a_test_certificate_and_the_same_chain_without_it_is_not()
    {
        var test = new ImageSigning(OpenFile(Data("test_only.sys"))).Signatures;
        var partner = new ImageSigning(OpenFile(Data("partner_signed.sys"))).Signatures;
        Assert.Equal(AuthenticodeStatus.Parsed, test.Status);
        Assert.Equal(AuthenticodeStatus.Parsed, partner.Status);
        Assert.Contains("(TEST ONLY)", test.PrimarySigner!.Certificate!.Subject);
        Assert.Equal(2, test.PrimarySigner.Chain.Count);
        Assert.False(test.PrimarySigner.SelfSigned);
        Assert.True(test.IsTestSigned);
        Assert.False(partner.IsTestSigned);
    }

    [Fact]
    public void DA5002_fires_on_the_TEST_ONLY_driver_only()
    {
        using var dir = new TempDir();
        dir.File("test_only.sys", Data("test_only.sys"));
        dir.File("partner_signed.sys", Data("partner_signed.sys"));
        var run = CliRunner.Run(dir.Path, "scan", ".", "--only", "DA5002", "--fail-on", "note", "--format", "json", "--no-progress");
        Assert.Equal(1, run.ExitCode);
        var hits = run.Stdout.Split('\n').Where(l => l.Contains("\"DA5002\"")).ToList();
        Assert.Single(hits);
        Assert.Contains("test_only.sys", hits[0]);
    }
}
