using System.Text.Json;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// tests/fixtures/src/wrappers.c at -O0/-O2/-Os, x64 and x86, against tests/fixtures/expected/wrappers.json
/// (written from the C source): every tag passed through the driver's own wrappers is recovered with its chain,
/// the one passed a mutable global stays unknown, and DA1004/DA1005 see the wrappers' callers.
/// </summary>
public class WrapperFixtureTests
{
    private static JsonDocument Expected() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixtures, "expected", "wrappers.json")));

    public static TheoryData<string> Binaries()
    {
        var data = new TheoryData<string>();
        foreach (var b in Expected().RootElement.GetProperty("binaries").EnumerateArray()) data.Add(b.GetString()!);
        return data;
    }

    private static string Hex(JsonElement call, string name) =>
        call.TryGetProperty(name, out var v) ? $" {name}={v.GetString()}" : "";

    [Theory]
    [MemberData(nameof(Binaries))]
    public void Every_tag_through_a_wrapper_is_recovered_with_its_chain_and_nothing_is_guessed(string binary)
    {
        var expected = new List<string>();
        foreach (var call in Expected().RootElement.GetProperty("calls").EnumerateArray())
        {
            var tag = call.GetProperty("tag").GetString()!;
            if (tag == "unknown") continue;
            var hops = call.TryGetProperty("hops", out var h) ? (h.TryGetProperty(binary, out var n) ? n : h.GetProperty("default")).GetInt32() : 0;
            expected.Add($"{call.GetProperty("api").GetString()} {tag}{Hex(call, "poolType")}{Hex(call, "poolFlags")} hops={hops}");
        }

        var (image, source) = FixtureCodeTests.Open(binary);
        using (source)
        {
            var tags = TagIndex.Build(image, PeFacts.ImportsOf(image));
            var actual = tags.Tags.Select(t =>
                $"{t.Api} {t.Tag}{(t.PoolType is { } p ? $" poolType=0x{p:x}" : "")}{(t.PoolFlags is { } f ? $" poolFlags=0x{f:x}" : "")} hops={t.Via.Count}").ToList();
            Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));

            // W3 passes g_RuntimeTag, a global the driver writes: unknown, never its initial value 'xRun'.
            Assert.Equal(1, tags.UnknownTagSites);
            Assert.DoesNotContain(tags.Tags, t => t.Tag == "xRun");

            // A chain names real calls: each hop's call targets the next wrapper, the last one holds the site.
            foreach (var use in tags.Tags.Where(t => t.ViaWrapper))
            {
                Assert.True(use.Via[0].CallRva < use.Via[0].WrapperRva || use.Via[0].CallRva > use.SiteRva);
                Assert.True(use.Via[^1].WrapperRva <= use.SiteRva);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public void Pool_type_and_flags_through_wrappers_reach_the_rules_at_the_callers(string binary)
    {
        var (image, source) = FixtureCodeTests.Open(binary);
        using (source)
        {
            var facts = new PeFacts(image);
            var calls = facts.Calls;
            // DA1004's condition: a non-paged, executable pool type; DA1005's: POOL_FLAG_UNINITIALIZED.
            var executable = calls.Where(c => c.Api.Name is "ExAllocatePool" or "ExAllocatePoolWithTag" && c.Args[0] is { } t && (t & 0x201) == 0).ToList();
            var uninitialized = calls.Where(c => c.Api.Name == "ExAllocatePool2" && c.Args[0] is { } f && (f & 0x2) != 0).ToList();
            // W2 (Abc2 through AllocTagged, or its thunk at x64 -O2/-Os) and W7 (LegacyAlloc): exactly two; W6: one.
            Assert.Equal(2, executable.Count);
            Assert.Equal(["ExAllocatePool", "ExAllocatePoolWithTag"], executable.Select(c => c.Api.Name!).Order(StringComparer.Ordinal));
            // LegacyAlloc is a real function except at x64 -O2/-Os, where it is a bare jmp [slot] (a thunk).
            var legacy = executable.Single(c => c.Api.Name == "ExAllocatePool");
            if (binary.StartsWith("x86/", StringComparison.Ordinal) || binary.EndsWith("_O0.sys", StringComparison.Ordinal))
                Assert.Equal((CallShape.Wrapper, true), (legacy.Shape, legacy.Via!.EndsWith($"ExAllocatePool at 0x{calls.Single(c => c.Api.Name == "ExAllocatePool" && c.Shape != CallShape.Wrapper && c.Args[0] is null).SiteRva:x}", StringComparison.Ordinal)));
            else Assert.Equal(CallShape.Thunk, legacy.Shape);
            var flags = Assert.Single(uninitialized);
            Assert.Equal(CallShape.Wrapper, flags.Shape);
            Assert.Equal(0x42UL, flags.Args[0]);
            Assert.Equal(0x31676C46UL, flags.Args[2]); // 'Flg1', the wrapper's own constant
            // Wrapper facts are keyed after the function's direct calls: direct keys never move.
            Assert.Equal(calls.Count, calls.Select(c => c.Key).Distinct().Count());
        }
    }

    [Fact]
    public void Tags_cli_shows_the_chain_and_selects_None_through_wrappers_too()
    {
        var r = CliRunner.Run(RepoPaths.Root, "tags", "tests/fixtures/bin/x86/wrappers_O0.sys", "--tag", "Out2,None", "--format", "json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var uses = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("tags").EnumerateArray().ToList();
        var out2 = Assert.Single(uses, u => u.GetProperty("tag").GetString() == "Out2");
        Assert.Equal(2, out2.GetProperty("via").GetArrayLength());
        Assert.Equal(["call", "wrapper"], out2.GetProperty("via")[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(["0x0", "0x1"], uses.Where(u => u.GetProperty("tag").GetString() == "None").Select(u => u.GetProperty("poolType").GetString()).Order());
        var text = CliRunner.Run(RepoPaths.Root, "tags", "tests/fixtures/bin/x86/wrappers_O0.sys", "--tag", "Out2");
        Assert.Matches(@"'Out2' 0x3274754f ExAllocatePoolWithTag at 0x[0-9a-f]+ pool-type 0x1 via call at 0x[0-9a-f]+ → wrapper 0x[0-9a-f]+ → call at 0x[0-9a-f]+ → wrapper 0x[0-9a-f]+\n", text.Stdout);
    }
}
