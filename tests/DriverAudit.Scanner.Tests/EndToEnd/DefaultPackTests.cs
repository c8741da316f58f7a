using System.Security.Cryptography;
using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>Default-pack rules that need something beyond a plain file scan: hash lists, dumps, code facts.</summary>
public sealed class DefaultPackTests
{
    private static List<JsonElement> Results(CliRunner.Outcome r) =>
        r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .Where(l => l.GetProperty("kind").GetString() == "result").ToList();

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void Known_vulnerable_driver_fires_only_with_a_LOLDrivers_list_that_holds_its_hash()
    {
        using var t = new TempDir();
        var driver = RepoPaths.Fixture("x64", "pool_legacy.sys");
        // LOLDrivers drivers.csv shape: quoted fields, hash cells joined by ", ".
        var csv = t.File("drivers.csv", System.Text.Encoding.UTF8.GetBytes(
            "\"Id\",\"Tags\",\"KnownVulnerableSamples_SHA256\",\"KnownVulnerableSamples_Authentihash_SHA256\"\n" +
            $"\"1\",\"vuln.sys\",\"{new string('0', 64)}, {Sha256(driver).ToUpperInvariant()}\",\"\"\n"));

        // Asked for without its list, DA6001 would check nothing: refused before scanning (exit 2).
        var without = CliRunner.Run(RepoPaths.Root, "scan", driver, "--format", "json", "--only", "DA6001");
        Assert.Equal(2, without.ExitCode);
        Assert.Contains("@known-vulnerable", without.Stderr);
        Assert.Empty(without.Stdout);
        // In a default run it is left out, and stderr says so.
        var defaults = CliRunner.Run(RepoPaths.Root, "scan", driver, "--format", "json");
        Assert.Contains("DA6001 KnownVulnerableDriver is not run", defaults.Stderr);

        var with = CliRunner.Run(RepoPaths.Root, "scan", driver, "--format", "json", "--only", "DA6001", "--hash-list", "known-vulnerable=" + csv);
        Assert.Equal(1, with.ExitCode); // DA6001 is an error
        Assert.Equal("DA6001", Assert.Single(Results(with)).GetProperty("ruleId").GetString());

        // Another driver is not on the list.
        var other = CliRunner.Run(RepoPaths.Root, "scan", RepoPaths.Fixture("x64", "pool_modern.sys"), "--format", "json", "--only", "DA6001", "--hash-list", "known-vulnerable=" + csv);
        Assert.Empty(Results(other));
    }

    [Fact]
    public void Authentihash_lists_match_signed_and_unsigned_copies_alike()
    {
        using var t = new TempDir();
        var list = t.File("authentihashes.txt", "# Authenticode SHA-256 of pool_modern\n10f7c6b0b3a33d337f487fcf3b07606da3ca43b2c1661367b2f252c020fba5aa\n"u8.ToArray());
        foreach (var name in new[] { "pool_modern.sys", "signed_test.sys", "signed_release.sys" })
        {
            var r = CliRunner.Run(RepoPaths.Root, "scan", RepoPaths.Fixture("x64", name), "--format", "json", "--only", "DA6001", "--hash-list", "known-vulnerable=" + list);
            Assert.Equal("DA6001", Assert.Single(Results(r)).GetProperty("ruleId").GetString());
        }
    }

    [Fact]
    public void A_missing_hash_list_file_is_a_configuration_error()
    {
        var r = CliRunner.Run(RepoPaths.Root, "scan", RepoPaths.Fixture("x64", "pool_modern.sys"), "--format", "json", "--hash-list", "known-vulnerable=/nonexistent/list.csv");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("known-vulnerable", r.Stderr);
    }

    [Theory]
    [InlineData(DumpArch.X64, "bitmap")]
    [InlineData(DumpArch.Arm64, "full")]   // Windows on ARM: the same answer through ARM64 page tables
    [InlineData(DumpArch.Arm64, "bitmap")]
    public void The_founding_case_with_the_default_pack_names_the_GUID_driver_in_one_command(DumpArch arch, string kind)
    {
        using var t = new TempDir();
        t.File("MEMORY.DMP", new FixtureDumpScenario(arch).Write(kind));
        var r = CliRunner.Run(t.Path, "scan", "MEMORY.DMP", "--format", "json", "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        var results = Results(r);
        SortedSet<string> ModulesWith(string rule) => new(results.Where(x => x.GetProperty("ruleId").GetString() == rule)
            .Select(x => x.GetProperty("module").GetString()!), StringComparer.Ordinal);

        // Untagged allocations: the GUID drivers (found through their IAT alone) and the legacy driver; never the modern one.
        Assert.Equal(new SortedSet<string>(StringComparer.Ordinal)
            { FixtureDumpScenario.GuidName, FixtureDumpScenario.GuidNoDirName, "pool_legacy.sys" }, ModulesWith("DA1001"));
        // Not from the driver store: the GUID-named ones (one of them also lives outside System32\drivers).
        Assert.Equal(new SortedSet<string>(StringComparer.Ordinal)
            { FixtureDumpScenario.GuidName, FixtureDumpScenario.GuidNoDirName }, ModulesWith("DA7001"));
        Assert.All(results, x => Assert.Equal("MEMORY.DMP", x.GetProperty("path").GetString()));

        // DA7001 is dump-only: the same GUID driver as a file does not trip it.
        var file = CliRunner.Run(RepoPaths.Root, "scan", RepoPaths.Fixture("x64", FixtureDumpScenario.GuidName), "--format", "json", "--only", "DA7001");
        Assert.Empty(Results(file));
    }

    [Fact]
    public void Call_site_rules_fire_on_the_tag_matrix_and_instruction_rules_on_primitives()
    {
        var r = CliRunner.Run(RepoPaths.Root, "scan", "tests/fixtures/bin", "--format", "json", "--fail-on", "none",
            "--only", "DA1002,DA1004,DA1005,DA3003,DA3004,DA3005");
        var results = Results(r);
        SortedSet<string> FilesWith(string rule) => new(results.Where(x => x.GetProperty("ruleId").GetString() == rule)
            .Select(x => x.GetProperty("path").GetString()!.Replace("tests/fixtures/bin/", "")), StringComparer.Ordinal);

        foreach (var arch in new[] { "x64", "x86" })
        {
            foreach (var o in new[] { "O0", "O2", "Os" })
            {
                Assert.Contains($"{arch}/tags_{o}.sys", FilesWith("DA1002"));  // 'Ddk ' and 0 tags
                Assert.Contains($"{arch}/tags_{o}.sys", FilesWith("DA1004"));  // NonPagedPool
                Assert.Contains($"{arch}/tags_{o}.sys", FilesWith("DA1005"));  // POOL_FLAG_UNINITIALIZED
            }
            Assert.Contains($"{arch}/primitives.sys", FilesWith("DA3003"));
            Assert.Contains($"{arch}/primitives.sys", FilesWith("DA3004"));
            Assert.Contains($"{arch}/primitives.sys", FilesWith("DA3005"));
        }
        Assert.DoesNotContain(FilesWith("DA1002").Concat(FilesWith("DA1004")).Concat(FilesWith("DA1005")), f => f.Contains("pool_modern") || f.Contains("signed_"));
        // jump_table.sys executes port I/O reached through jump tables (RealDriverClassTests); nothing else does.
        Assert.All(FilesWith("DA3003").Concat(FilesWith("DA3005")), f => Assert.EndsWith("primitives.sys", f));
        Assert.All(FilesWith("DA3004"), f => Assert.Matches("(primitives|jump_table)\\.sys$", f));
        // Call-site findings anchor to function + ordinal, never to a raw address.
        Assert.All(results.Where(x => x.GetProperty("ruleId").GetString()!.StartsWith("DA100", StringComparison.Ordinal)),
            x => Assert.Matches(@"^ntoskrnl\.exe!\w+@(fn_0x[0-9a-f]+|nofn)#\d+$", x.GetProperty("anchor").GetString()));
    }

    [Fact]
    public void Call_site_results_carry_their_address_in_sarif()
    {
        using var t = new TempDir();
        var sarif = System.IO.Path.Combine(t.Path, "calls.sarif");
        CliRunner.Run(RepoPaths.Root, "scan", "tests/fixtures/bin/x64/pool_legacy.sys", "--only", "DA1004", "-o", sarif);
        var text = File.ReadAllText(sarif);
        SarifSchema.AssertValid(text);
        using var doc = JsonDocument.Parse(text);
        var location = doc.RootElement.GetProperty("runs")[0].GetProperty("results")[0].GetProperty("locations")[0].GetProperty("physicalLocation");
        Assert.Equal(0x1056, location.GetProperty("address").GetProperty("relativeAddress").GetInt64()); // the call (objdump: pool_legacy x64)
        // No region on binaries: it would make GitHub's upload read the binary as text to fingerprint it.
        Assert.False(location.TryGetProperty("region", out _));
    }
}
