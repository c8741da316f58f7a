using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Tests.TestSupport;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>Global decoding counters are asserted here: no other test may decode concurrently.</summary>
[CollectionDefinition(nameof(CodeStatsCollection), DisableParallelization = true)]
public sealed class CodeStatsCollection;

[Collection(nameof(CodeStatsCollection))]
public class TagsCliTests
{
    private static (int Code, string Out, string Err) Run(string workingDir, params string[] args)
    {
        var stdout = new MemoryStream();
        var outWriter = new StreamWriter(stdout, new UTF8Encoding(false)) { AutoFlush = true };
        var err = new StringWriter();
        var code = DriverAuditCli.Run(args, new CliIo(stdout, outWriter, err, false, workingDir));
        outWriter.Flush();
        return (code, Encoding.UTF8.GetString(stdout.ToArray()), err.ToString());
    }

    private static TempDir Corpus()
    {
        var dir = new TempDir();
        foreach (var arch in new[] { "x64", "x86" })
            foreach (var name in new[] { "tags_O2.sys", "pool_modern.sys", "pool_legacy.sys", "version_pdb.sys", "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys" })
            {
                var src = RepoPaths.Fixture(arch, name);
                if (File.Exists(src)) dir.File($"{arch}/{name}", File.ReadAllBytes(src));
            }
        return dir;
    }

    [Fact]
    public void Tag_filter_over_a_directory_finds_exactly_the_drivers_using_the_tag()
    {
        using var dir = Corpus();
        var (code, output, err) = Run(dir.Path, "tags", ".", "--tag", "Ddk ", "--format", "json");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var paths = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()).Order(StringComparer.Ordinal);
        Assert.Equal(["x64/tags_O2.sys", "x86/tags_O2.sys"], paths);
        var first = JsonDocument.Parse(lines[0]).RootElement;
        var tag = Assert.Single(first.GetProperty("tags").EnumerateArray());
        Assert.Equal("Ddk ", tag.GetProperty("tag").GetString());
        Assert.Equal("0x206b6444", tag.GetProperty("value").GetString());
        Assert.Equal("ExAllocatePoolWithTag", tag.GetProperty("api").GetString());
        Assert.Equal(1, first.GetProperty("unknownTagSites").GetInt32());

        // 'Ddk' without the trailing space is another tag; a wildcard finds it.
        Assert.Equal("", Run(dir.Path, "tags", ".", "--tag", "Ddk").Out);
        Assert.Contains("tags_O2.sys", Run(dir.Path, "tags", ".", "--tag", "Dd?*").Out);
        // 'Modn' is used by pool_modern only (both architectures).
        var modern = Run(dir.Path, "tags", ".", "--tag", "Modn", "--format", "pooltag").Out;
        Assert.Equal(["Modn - pool_modern.sys - ExAllocatePool2", "Modn - pool_modern.sys - ExFreePoolWithTag"],
            modern.Split('\n', StringSplitOptions.RemoveEmptyEntries).Distinct());
    }

    [Fact]
    public void Pooltag_format_escapes_non_printable_bytes_and_keeps_trailing_spaces()
    {
        using var dir = Corpus();
        var (code, output, _) = Run(dir.Path, "tags", "x64/tags_O2.sys", "--format", "pooltag");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("Ddk  - tags_O2.sys - ExAllocatePoolWithTag", lines);
        Assert.Contains(@"\x00\x00\x00\x00 - tags_O2.sys - ExAllocatePoolWithTag", lines);
        Assert.Contains("Test - tags_O2.sys - ExFreePoolWithTag", lines);
        Assert.Equal(9, lines.Length); // Help xReg Test(x2 APIs) Exec UnIn Poo2 Ddk 0
    }

    [Fact]
    public void A_scan_with_import_rules_only_never_disassembles()
    {
        using var dir = Corpus();
        var rule = dir.File("rules/untagged.yaml", Encoding.UTF8.GetBytes("""
            id: DA9001
            name: UntaggedPoolTest
            title: Untagged pool allocation
            level: warning
            precision: high
            description: Imports the untagged allocator.
            help: Use ExAllocatePool2.
            message: "{artifact} imports {import}."
            match:
              import: ExAllocatePool
            """));
        var before = (CodeStats.InstructionsDecoded, CodeStats.RegionsDecoded, CodeStats.Sweeps);
        var (code, output, err) = Run(dir.Path, "scan", ".", "--no-default-rules", "--rules", rule, "--format", "json", "--fail-on", "none");
        Assert.True(code == 0, err + output);
        Assert.Contains("DA9001", output);
        Assert.Equal(before, (CodeStats.InstructionsDecoded, CodeStats.RegionsDecoded, CodeStats.Sweeps));

        // The counter is live: the tags command over the same corpus does decode.
        Run(dir.Path, "tags", ".");
        Assert.True(CodeStats.InstructionsDecoded > before.InstructionsDecoded);
    }
}
