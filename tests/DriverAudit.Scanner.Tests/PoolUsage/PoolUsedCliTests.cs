using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.PoolUsage;

/// <summary><c>tags --poolused</c>: a !poolused or PoolMon listing in, the drivers owning each tag row out.</summary>
public sealed class PoolUsedCliTests
{
    private const string Guid = "{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys";

    private static string Listing(string name) => Path.Combine(RepoPaths.Fixtures, "poolused", name);

    private static List<JsonElement> Lines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static TempDir Drivers()
    {
        var dir = new TempDir();
        foreach (var name in new[] { "pool_legacy.sys", "pool_modern.sys", "tags_O2.sys", Guid })
            dir.File($"x64/{name}", File.ReadAllBytes(RepoPaths.Fixture("x64", name)));
        return dir;
    }

    [Fact]
    public void Json_lines_one_object_per_row_in_the_listing_order_with_the_exact_shape()
    {
        using var dir = Drivers();
        var r = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", Listing("poolused-2.txt"), "--format", "json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = Lines(r.Stdout);
        Assert.Equal(["None", "Abc1", "Modn", "Ddk ", "Thre", "Io  "], rows.Select(e => e.GetProperty("tag").GetString()));

        var none = rows[0];
        Assert.Equal(["tag", "nonPagedAllocs", "nonPagedBytes", "pagedAllocs", "pagedBytes", "description", "drivers"],
            none.EnumerateObject().Select(p => p.Name));
        Assert.Equal(246479, none.GetProperty("nonPagedAllocs").GetInt64());
        Assert.Equal(50503264, none.GetProperty("nonPagedBytes").GetInt64());
        Assert.Equal("call to ExAllocatePool", none.GetProperty("description").GetString());
        var owners = none.GetProperty("drivers").EnumerateArray()
            .Select(d => $"{d.GetProperty("path").GetString()}|{d.GetProperty("module").GetString()}|{d.GetProperty("sites").GetInt32()}|{d.GetProperty("via").GetString()}")
            .Order(StringComparer.Ordinal);
        Assert.Equal([$"x64/pool_legacy.sys|pool_legacy.sys|2|direct", $"x64/{Guid}|{Guid}|1|direct"], owners);
        Assert.Equal(["path", "module", "sites", "via"], none.GetProperty("drivers")[0].EnumerateObject().Select(p => p.Name));

        // Trailing-space tag 'Ddk ' is matched to tags_O2's 'Ddk ' (an allocation; its frees do not count).
        var ddk = Assert.Single(rows[3].GetProperty("drivers").EnumerateArray());
        Assert.Equal("x64/tags_O2.sys", ddk.GetProperty("path").GetString());
        Assert.Equal(1, ddk.GetProperty("sites").GetInt32());
        // 'Modn': pool_modern allocates it once (its ExFreePoolWithTag is not an owner site).
        Assert.Equal(1, Assert.Single(rows[2].GetProperty("drivers").EnumerateArray()).GetProperty("sites").GetInt32());
        // Tags nobody scanned uses: an empty list, not a missing one.
        Assert.Equal(0, rows[4].GetProperty("drivers").GetArrayLength());
        Assert.Equal(JsonValueKind.Array, rows[5].GetProperty("drivers").ValueKind);
    }

    [Fact]
    public void Text_table_puts_owned_rows_first_and_lists_unknown_owners()
    {
        using var dir = Drivers();
        var r = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", Listing("poolused-4.txt"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n');
        Assert.StartsWith("Tag", lines[0]);
        Assert.Matches(@"^Ddk +10,240 +2,560  x64/tags_O2\.sys \(1 site\)$", lines[1]);
        Assert.Matches(@"^None +50,503,264 +0  x64/pool_legacy\.sys \(2 sites\)$", lines[2]);
        Assert.Matches(@"^ {38}x64/\{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F\}\.sys \(1 site\)$", lines[3]);
        Assert.Contains("Unknown owners (2 tags", r.Stdout);
        Assert.Contains("'MmSt' 'Out2'", r.Stdout);
        Assert.Contains("4 tag row(s) in the !poolused listing, 2 allocated by the 4 scanned image(s), 2 by none of them.", r.Stdout);
    }

    [Fact]
    public void PoolMon_snapshots_work_the_same_way()
    {
        using var dir = Drivers();
        var r = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", Listing("poolmon.log"), "--format", "json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = Lines(r.Stdout);
        Assert.Equal(["None", "Ddk ", "Ctx1", "Thre"], rows.Select(e => e.GetProperty("tag").GetString()));
        Assert.Equal(10, rows[1].GetProperty("pagedAllocs").GetInt64());
        Assert.Equal(JsonValueKind.Null, rows[1].GetProperty("description").ValueKind);
    }

    [Theory]
    [InlineData(DumpArch.X64)]
    [InlineData(DumpArch.X86Pae)]
    public void Over_a_dump_the_modules_are_the_candidates_GUID_named_ones_included(DumpArch arch)
    {
        using var t = new TempDir();
        t.File("MEMORY.DMP", new FixtureDumpScenario(arch).Write("full"));
        t.File("poolused.txt", File.ReadAllBytes(Listing("poolused-2.txt")));
        var r = CliRunner.Run(t.Path, "tags", "MEMORY.DMP", "--poolused", "poolused.txt", "--format", "json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var none = Lines(r.Stdout)[0];
        // The GUID driver's one ExAllocatePool call is in INIT, discarded at load: its IAT still names the API.
        Assert.Equal(
        [
            "MEMORY.DMP!pool_legacy.sys|2|direct",
            $"MEMORY.DMP!{FixtureDumpScenario.GuidNoDirName}|0|import",
            $"MEMORY.DMP!{Guid}|0|import",
        ], none.GetProperty("drivers").EnumerateArray()
            .Select(d => $"{d.GetProperty("path").GetString()}|{d.GetProperty("sites").GetInt32()}|{d.GetProperty("via").GetString()}").Order(StringComparer.Ordinal));
        var modn = Lines(r.Stdout)[2];
        Assert.Equal("MEMORY.DMP!pool_modern.sys", Assert.Single(modn.GetProperty("drivers").EnumerateArray()).GetProperty("path").GetString());
    }

    [Fact]
    public void Bad_listings_are_usage_errors_and_a_listing_nobody_owns_exits_1()
    {
        using var dir = Drivers();
        dir.File("empty.txt", "nothing here\n"u8.ToArray());
        var empty = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", "empty.txt");
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("holds no tag rows", empty.Stderr);
        var missing = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", "missing.txt");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);

        dir.File("other.txt", " Zzz1 1 16 0 0\n"u8.ToArray());
        var nobody = CliRunner.Run(dir.Path, "tags", "x64", "--poolused", "other.txt", "--format", "json");
        Assert.Equal(1, nobody.ExitCode);
        Assert.Equal(0, Lines(nobody.Stdout).Single().GetProperty("drivers").GetArrayLength());
        Assert.Contains("no scanned driver allocates any tag of the listing", nobody.Stderr);
    }
}
