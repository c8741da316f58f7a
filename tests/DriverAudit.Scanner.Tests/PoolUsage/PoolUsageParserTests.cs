using DriverAudit.Scanner.PoolUsage;
using Xunit;

namespace DriverAudit.Scanner.Tests.PoolUsage;

/// <summary>The committed listings under tests/fixtures/poolused, parsed exactly.</summary>
public sealed class PoolUsageParserTests
{
    private static PoolUsageListing Load(string name) =>
        PoolUsageParser.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "poolused", name)));

    private static string Row(PoolUsageRow r) =>
        $"{r.Text}|{r.NonPagedAllocs}|{r.NonPagedBytes}|{r.PagedAllocs}|{r.PagedBytes}|{r.Description ?? "null"}";

    [Fact]
    public void Sorted_by_nonpaged_with_descriptions_and_total()
    {
        var l = Load("poolused-2.txt");
        Assert.Equal("poolused", l.Format);
        Assert.Equal(
        [
            "None|246479|50503264|0|0|call to ExAllocatePool",
            "Abc1|225|39559168|0|0|UNKNOWN pooltag 'Abc1', please update pooltag.txt",
            "Modn|12|3072|0|0|UNKNOWN pooltag 'Modn', please update pooltag.txt",
            "Ddk |40|10240|10|2560|Default for driver allocated memory (user's of ntddk.h)",
            "Thre|2046|2749824|0|0|Thread objects , Binary: nt!ps",
            "Io  |88|45056|112|90112|general IO allocations , Binary: nt!io",
        ], l.Rows.Select(Row));
        Assert.Equal(0x656E6F4Eu, l.Rows[0].Tag);  // 'enoN'
        Assert.Equal(0x206B6444u, l.Rows[3].Tag);  // 'Ddk ' keeps its trailing space
        Assert.Equal(0x20206F49u, l.Rows[5].Tag);  // 'Io  '
        Assert.Equal(8, l.Rows[0].Line);
        Assert.NotNull(l.Total);
        Assert.Equal("TOTAL|248836|92869632|122|92672|null", Row(l.Total!));
    }

    [Fact]
    public void Sorted_by_paged_without_descriptions_in_the_older_layout_with_crlf()
    {
        var l = Load("poolused-4.txt");
        Assert.Equal(
        [
            "MmSt|0|0|2110|8519680|null",
            "Out2|0|0|3|288|null",
            "Ddk |40|10240|10|2560|null",
            "None|246479|50503264|0|0|null",
        ], l.Rows.Select(Row));
        Assert.Equal("TOTAL|246519|50513504|2123|8522528|null", Row(l.Total!));
    }

    [Fact]
    public void A_copy_that_squeezed_the_columns_still_parses_and_pads_short_tags()
    {
        var l = Load("poolused-squeezed.txt");
        Assert.Equal(
        [
            "None|246479|50503264|0|0|call to ExAllocatePool",
            "Ntfx|1523|94560|0|0|General Allocation , Binary: ntfs.sys",
            "Io  |88|45056|112|90112|general IO allocations , Binary: nt!io",
            "1394|1|520|0|0|1394 bus driver",
        ], l.Rows.Select(Row));
        Assert.Null(l.Total);
    }

    [Fact]
    public void PoolMon_snapshot_merges_the_nonpaged_and_paged_rows_of_a_tag_in_first_seen_order()
    {
        var l = Load("poolmon.log");
        Assert.Equal("poolmon", l.Format);
        // Allocs columns are PoolMon's Diff (outstanding allocations), bytes its Bytes.
        Assert.Equal(
        [
            "None|246479|50503264|0|0|null",
            "Ddk |40|10240|10|2560|null",
            "Ctx1|16|1408|0|0|null",
            "Thre|2046|2749824|0|0|null",
        ], l.Rows.Select(Row));
        Assert.Equal(6, l.Rows[0].Line);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0: kd> !poolused 2\n Sorting by Tag\n Pool Used:\n Tag Allocs Used Allocs Used\n")]
    [InlineData("MZ\u0090\0\u0003\0\0\0\u0004")]
    [InlineData(" Thread 1 2 3 4\n ThreX 1 2 3 4\n")]
    [InlineData(" Ab\u0001c 1 2 3 4\n")]
    public void Text_without_rows_yields_none(string text) => Assert.Empty(PoolUsageParser.Parse(text).Rows);

    [Fact]
    public void The_verbose_layout_is_not_taken_for_summary_rows()
    {
        // !poolused 1 prints allocs, frees, diff and used per pool: eight numbers, not four.
        Assert.Empty(PoolUsageParser.Parse(" Abcd 10 2 8 800 0 0 0 0\n").Rows);
    }

    [Fact]
    public void Huge_numbers_and_digit_grouping()
    {
        var l = PoolUsageParser.Parse(" Big1 1,000 9223372036854775807 0 0\n Big2 1 99999999999999999999 0 0\n");
        var row = Assert.Single(l.Rows); // the second overflows a long: not a row
        Assert.Equal(1000, row.NonPagedAllocs);
        Assert.Equal(long.MaxValue, row.NonPagedBytes);
    }
}
