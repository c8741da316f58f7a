using System.Globalization;
using System.Text.Json;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The compiled fixture matrix (tests/fixtures/src/tags.c at -O0/-O2/-Os, x64 and x86) against
/// tests/fixtures/expected/tags.json, written from the C source: exact multisets, nothing invented, nothing missed.
/// </summary>
public class FixtureCodeTests
{
    public static TheoryData<string> TagBinaries()
    {
        var data = new TheoryData<string>();
        foreach (var b in Expected().RootElement.GetProperty("binaries").EnumerateArray()) data.Add(b.GetString()!);
        return data;
    }

    private static JsonDocument Expected() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", "tags.json")));

    internal static (PeImage Image, FileImageSource Source) Open(string relative)
    {
        var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", relative));
        var image = PeImage.TryOpen(source).Image ?? throw new InvalidOperationException(relative);
        return (image, source);
    }

    [Theory]
    [MemberData(nameof(TagBinaries))]
    public void Recovered_tags_and_pool_arguments_are_exactly_the_C_source(string binary)
    {
        var expected = new List<string>();
        foreach (var call in Expected().RootElement.GetProperty("calls").EnumerateArray())
        {
            var api = call.GetProperty("api").GetString()!;
            var tag = call.GetProperty("tag").GetString()!;
            var tagText = tag == "unknown" ? "unknown" : $"0x{uint.Parse(tag[2..], NumberStyles.HexNumber):x8}";
            var type = call.TryGetProperty("poolType", out var t) ? $"type=0x{t.GetInt32():x}" : "";
            var flags = call.TryGetProperty("poolFlags", out var f) ? $"flags=0x{Convert.ToUInt64(f.GetString(), 16):x}" : "";
            expected.Add($"{api} {tagText} {type}{flags}");
        }

        var (image, source) = Open(binary);
        using (source)
        {
            var tags = TagIndex.Build(image, PeFacts.ImportsOf(image));
            var actual = new List<string>();
            foreach (var site in tags.Sites)
            {
                var sig = PoolApis.Find(site.Api.Ref)!;
                var tag = site.Arg(sig.TagArg);
                var type = sig.PoolTypeArg >= 0 ? $"type={site.Arg(sig.PoolTypeArg)}" : "";
                var flags = sig.PoolFlagsArg >= 0 ? $"flags={site.Arg(sig.PoolFlagsArg)}" : "";
                actual.Add($"{sig.Name} {(tag.IsKnown ? $"0x{tag.Value:x8}" : "unknown")} {type}{flags}");
            }
            expected.Sort(StringComparer.Ordinal);
            actual.Sort(StringComparer.Ordinal);
            Assert.Equal(expected, actual);
            Assert.Equal(1, tags.UnknownTagSites);
            Assert.Equal(11, tags.Tags.Count);
            // ExAllocatePool2 is called through its import thunk (C8, C9) in every binary.
            Assert.Equal(2, tags.Sites.Count(s => s.Api.Name == "ExAllocatePool2" && (s.Shape & CallSiteShape.ViaThunk) != 0));
        }
    }

    [Theory]
    [InlineData("x64/tags_O2.sys")]
    [InlineData("x64/tags_Os.sys")]
    public void X64_optimised_helper_is_a_tail_call_inside_a_pdata_function(string binary)
    {
        var (image, source) = Open(binary);
        using (source)
        {
            var facts = new CodeFacts(image);
            var help = facts.CallSites.Single(s => s.Args[2] is { IsKnown: true, Value: 0x706C6548 });
            Assert.Equal(CallSiteShape.TailCall, help.Shape);
            Assert.NotNull(help.FunctionStartRva);
            Assert.True(help.FunctionStartRva < help.SiteRva);
        }
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Primitives_instruction_hits_are_the_inline_asm_of_the_source(string arch)
    {
        var (image, source) = Open($"{arch}/primitives.sys");
        using (source)
        {
            var hits = new CodeFacts(image).Instructions;
            // rdmsr; wrmsr; out dx,al; in al,dx; out 0x80,al; in eax,dx; mov cr0,reg; mov cr4,reg.
            Assert.Equal(
                ["in", "in", "mov cr0", "mov cr4", "out", "out", "rdmsr", "wrmsr"],
                hits.Select(h => h.ControlRegister is null ? h.Mnemonic : $"mov {h.ControlRegister}").Order(StringComparer.Ordinal));
            Assert.Equal(hits.OrderBy(h => h.Rva).Select(h => h.Rva), hits.Select(h => h.Rva));
        }
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Drivers_without_inline_asm_have_no_instruction_hits(string arch)
    {
        foreach (var name in new[] { "tags_O0.sys", "tags_O2.sys", "tags_Os.sys", "pool_legacy.sys", "pool_modern.sys", "wx_section.sys" })
        {
            var (image, source) = Open($"{arch}/{name}");
            using (source) Assert.Empty(new CodeFacts(image).Instructions);
        }
    }

    [Theory]
    [InlineData("x64")]
    [InlineData("x86")]
    public void Guid_driver_frees_with_tag_zero_and_its_untagged_allocation_is_tag_None(string arch)
    {
        var (image, source) = Open($"{arch}/{{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}}.sys");
        using (source)
        {
            var facts = new CodeFacts(image);
            var tags = TagIndex.Build(facts);
            var alloc = Assert.Single(facts.CallSitesOf("ExAllocatePool"));
            Assert.Equal(0UL, alloc.Args[0].Value); // NonPagedPool
            Assert.Equal(
            [
                ("ExAllocatePool", "None", true, alloc.SiteRva, (ulong?)0),
                ("ExFreePoolWithTag", @"\x00\x00\x00\x00", false, facts.CallSitesOf("ExFreePoolWithTag").Single().SiteRva, null),
            ], tags.Tags.Select(t => (t.Api, t.Tag, t.Untagged, t.SiteRva, t.PoolType)).OrderBy(t => t.Api, StringComparer.Ordinal));
            Assert.DoesNotContain(tags.Tags, t => t.ImportOnly);
        }
    }
}
