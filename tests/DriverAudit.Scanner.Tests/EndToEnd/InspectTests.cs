using System.Text.Json;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>`driveraudit inspect`: what the parser sees, in the documented JSON Lines shape.</summary>
public sealed class InspectTests
{
    private static List<JsonElement> Json(CliRunner.Outcome r) =>
        r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void Json_lines_hold_one_object_per_image_with_the_documented_fields()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inspect", "--json", "tests/fixtures/bin/x64/ordinal_delay.sys", "tests/fixtures/bin/x86/pool_legacy.sys");
        Assert.Equal(0, r.ExitCode);
        var images = Json(r);
        Assert.Equal(2, images.Count);

        var od = images[0];
        Assert.Equal("tests/fixtures/bin/x64/ordinal_delay.sys", od.GetProperty("path").GetString());
        Assert.Equal("x64", od.GetProperty("machine").GetString());
        Assert.Equal("native", od.GetProperty("subsystem").GetString());
        var imports = od.GetProperty("imports").EnumerateArray().ToList();
        // By ordinal: name null, ordinal set. Delay-load: delayed true.
        Assert.Contains(imports, i => i.GetProperty("module").GetString() == "helper.sys" && i.GetProperty("name").ValueKind == JsonValueKind.Null && i.GetProperty("ordinal").GetInt32() == 7 && !i.GetProperty("delayed").GetBoolean());
        Assert.Contains(imports, i => i.GetProperty("module").GetString() == "delayhelper.sys" && i.GetProperty("name").GetString() == "DelayedInit" && i.GetProperty("delayed").GetBoolean());
        Assert.Contains(imports, i => i.GetProperty("name").GetString() == "ExAllocatePoolWithTag" && i.GetProperty("ordinal").ValueKind == JsonValueKind.Null);
        var text = od.GetProperty("sections").EnumerateArray().First(s => s.GetProperty("name").GetString() == ".text");
        Assert.True(text.GetProperty("executable").GetBoolean());
        Assert.False(text.GetProperty("writable").GetBoolean());
        Assert.True(text.GetProperty("readable").GetBoolean());
        Assert.Equal("0x1000", text.GetProperty("rva").GetString());

        Assert.Equal("x86", images[1].GetProperty("machine").GetString());
    }

    [Fact]
    public void Exports_pdb_and_version_info_appear()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inspect", "--json", "tests/fixtures/bin/x64/exports_forwarder.sys", "tests/fixtures/bin/x64/version_pdb.sys");
        var images = Json(r);
        var exports = images[0].GetProperty("exports").EnumerateArray().ToList();
        Assert.Contains(exports, e => e.GetProperty("name").GetString() == "ExpForwardedFree" && e.GetProperty("forwarder").GetString() == "ntoskrnl.ExFreePool");
        Assert.Contains(exports, e => e.GetProperty("name").ValueKind == JsonValueKind.Null && e.GetProperty("ordinal").GetInt32() == 10);
        Assert.Equal("version_pdb.pdb", images[1].GetProperty("pdb").GetProperty("path").GetString());
        Assert.Equal("DriverAudit Fixtures", images[1].GetProperty("versionInfo").GetProperty("CompanyName").GetString());
    }

    [Fact]
    public void A_non_PE_input_is_an_error_object_and_exit_3()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inspect", "--json", "tests/fixtures/bin/x64/not_a_pe.sys", "tests/fixtures/bin/x64/pool_modern.sys");
        Assert.Equal(3, r.ExitCode);
        var lines = Json(r);
        Assert.Contains("MZ", lines[0].GetProperty("error").GetString());
        Assert.Equal("x64", lines[1].GetProperty("machine").GetString());
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void Text_output_lists_imports_with_their_slots()
    {
        var r = CliRunner.Run(RepoPaths.Root, "inspect", "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"0x[0-9a-f]{8} ntoskrnl\.exe!ExAllocatePool\b", r.Stdout);
    }
}
