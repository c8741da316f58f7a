using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>`driveraudit tags` on a kernel dump: tags found through each module's resolved IAT.</summary>
public sealed class TagsOverDumpTests
{
    [Theory]
    [InlineData(DumpArch.X64, "full")]
    [InlineData(DumpArch.X64, "bitmap")]
    [InlineData(DumpArch.X86Pae, "full")]
    public void Tag_search_over_a_dump_finds_exactly_the_modules_that_use_the_tag(DumpArch arch, string kind)
    {
        using var t = new TempDir();
        t.File("MEMORY.DMP", new FixtureDumpScenario(arch).Write(kind));

        var r = CliRunner.Run(t.Path, "tags", "MEMORY.DMP", "--tag", "Modn", "--format", "json");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var only = Assert.Single(lines);
        Assert.Equal("pool_modern.sys", only.GetProperty("module").GetString());
        Assert.Equal("MEMORY.DMP!pool_modern.sys", only.GetProperty("path").GetString());
        Assert.All(only.GetProperty("tags").EnumerateArray(), tag => Assert.Equal("Modn", tag.GetProperty("tag").GetString()));

        // The pooltag format names the module, as pooltag.txt names binaries.
        var pooltag = CliRunner.Run(t.Path, "tags", "MEMORY.DMP", "--tag", "Modn", "--format", "pooltag");
        Assert.Contains("Modn - pool_modern.sys - ", pooltag.Stdout);

        // A tag nobody uses: no module at all.
        Assert.Equal("", CliRunner.Run(t.Path, "tags", "MEMORY.DMP", "--tag", "Ddk ", "--format", "json").Stdout.Trim());
    }

    [Fact]
    public void A_triage_dump_is_searched_in_what_it_holds_and_says_so()
    {
        using var t = new TempDir();
        // Nothing captured: no tags, and a line saying why; the dump itself was read, as scan reads it (exit 0, not 3).
        t.File("mini.dmp", new FixtureDumpScenario(DumpArch.X64).Write("triage"));
        var r = CliRunner.Run(t.Path, "tags", "mini.dmp");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("triage", r.Stderr);
        Assert.Equal("", r.Stdout.Trim());

        // Headers of pool_modern.sys captured: its imported allocators are listed from the part the dump holds.
        t.File("captured.dmp", TriageScanTests.Scenario(DumpArch.X64).Writer.WriteTriage());
        var captured = CliRunner.Run(t.Path, "tags", "captured.dmp", "--format", "json");
        Assert.Equal(0, captured.ExitCode);
        var modules = captured.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("module").GetString()).ToList();
        Assert.Contains("pool_modern.sys", modules);
    }
}
