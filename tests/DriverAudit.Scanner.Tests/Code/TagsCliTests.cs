using System.Text;
using System.Text.Json;
using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.Code;
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

        // As people type it: without the trailing space, or with a wildcard.
        Assert.Equal(output, Run(dir.Path, "tags", ".", "--tag", "Ddk", "--format", "json").Out);
        Assert.Contains("tags_O2.sys", Run(dir.Path, "tags", ".", "--tag", "Dd?*").Out);
        // 'Modn' is used by pool_modern only (both architectures): one pooltag line, a comment per file of that name.
        var modern = Run(dir.Path, "tags", ".", "--tag", "Modn", "--format", "pooltag");
        Assert.Equal(0, modern.Code);
        Assert.Equal(
        [
            "rem Modn - pool_modern.sys: x64/pool_modern.sys",
            "rem Modn - pool_modern.sys: x86/pool_modern.sys",
            "Modn - pool_modern.sys - ExAllocatePool2, ExFreePoolWithTag",
        ], modern.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void A_tag_that_matches_nothing_says_so_and_exits_1_like_grep()
    {
        using var dir = Corpus();
        var none = Run(dir.Path, "tags", ".", "--tag", "Zzzz");
        Assert.Equal(1, none.Code);
        Assert.Equal("", none.Out);
        Assert.Contains("no scanned driver uses a tag matching 'Zzzz'", none.Err);

        // Case-sensitive by default, with a hint; --ignore-case matches.
        var lower = Run(dir.Path, "tags", ".", "--tag", "ddk");
        Assert.Equal(1, lower.Code);
        Assert.Contains("'Ddk ' matches with --ignore-case", lower.Err);
        var folded = Run(dir.Path, "tags", ".", "--tag", "ddk", "--ignore-case", "--format", "json");
        Assert.Equal(0, folded.Code);
        Assert.Equal(2, folded.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // Several tags (repeated or comma-separated): 0 when one matched, and the other is named on stderr.
        var several = Run(dir.Path, "tags", ".", "--tag", "Modn,Zzzz", "--tag", "Test", "--format", "json");
        Assert.Equal(0, several.Code);
        Assert.Contains("'Zzzz'", several.Err);
        Assert.DoesNotContain("'Modn'", several.Err);
        Assert.Equal(4, several.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // pool_modern (Modn) and tags_O2 (Test), x64 and x86

        // A tag longer than four bytes is a usage error.
        var bad = Run(dir.Path, "tags", ".", "--tag", "Thread");
        Assert.Equal(2, bad.Code);
        Assert.Contains("longer than the 4 bytes", bad.Err);
    }

    [Fact]
    public void Untagged_allocator_sites_are_tag_None_with_their_api_and_site()
    {
        using var dir = Corpus();
        var (code, output, err) = Run(dir.Path, "tags", ".", "--tag", "None", "--format", "json");
        Assert.True(code == 0, err);
        var byPath = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToDictionary(e => e.GetProperty("path").GetString()!,
                e => e.GetProperty("tags").EnumerateArray().Select(t => $"{t.GetProperty("tag").GetString()} {t.GetProperty("api").GetString()} {t.GetProperty("untagged").GetBoolean()}").ToList());
        Assert.Equal(["x64/pool_legacy.sys", "x64/{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", "x86/pool_legacy.sys", "x86/{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys"],
            byPath.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["None ExAllocatePool True", "None ExAllocatePoolWithQuota True"], byPath["x64/pool_legacy.sys"]);
        Assert.Equal(["None ExAllocatePool True"], byPath["x86/{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys"]);
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
        Assert.Contains("Test - tags_O2.sys - ExAllocatePoolWithTag, ExFreePoolWithTag", lines);
        Assert.Equal(8, lines.Length); // Help xReg Test Exec UnIn Poo2 Ddk 0: one line per tag, its APIs together
        Assert.Equal(lines.Length, lines.Distinct().Count());
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
