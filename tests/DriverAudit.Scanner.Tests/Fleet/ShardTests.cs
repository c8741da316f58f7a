using System.Text.Json;
using DriverAudit.Scanner.Fleet;
using Xunit;

namespace DriverAudit.Scanner.Tests.Fleet;

/// <summary>--shard K/N: exactly-once coverage, size balance within one file, the same split on every machine.</summary>
public sealed class ShardTests
{
    [Theory]
    [InlineData("1/1", 1, 1)]
    [InlineData("3/8", 3, 8)]
    [InlineData("8/8", 8, 8)]
    public void Valid_specs_parse(string text, int k, int n)
    {
        Assert.True(ShardSpec.TryParse(text, out var spec, out _));
        Assert.Equal(new ShardSpec(k, n), spec);
    }

    [Theory]
    [InlineData("0/4")]
    [InlineData("5/4")]
    [InlineData("1/0")]
    [InlineData("3")]
    [InlineData("a/b")]
    [InlineData("-1/4")]
    [InlineData("1/4/2")]
    [InlineData(" 1/4")]
    public void Invalid_specs_are_usage_errors(string text)
    {
        Assert.False(ShardSpec.TryParse(text, out _, out var error));
        Assert.Contains("--shard", error);
        var r = CliRunner.Run(RepoPaths.Root, "scan", "--shard", text, "tests/fixtures/bin/x64/pool_legacy.sys");
        Assert.Equal(2, r.ExitCode);
    }

    [Fact]
    public void Every_file_lands_in_exactly_one_shard_and_loads_differ_by_at_most_the_largest_file()
    {
        var random = new Random(1234);
        for (var round = 0; round < 200; round++)
        {
            var count = random.Next(1, 12);
            var files = Enumerable.Range(0, random.Next(0, 300))
                .Select(i => (Size: random.Next(4) == 0 ? (long)random.Next(1, 50_000_000) : random.Next(0, 200_000), Key: $"0:f{i:D4}.sys"))
                .ToList();
            var shards = Sharding.Shards(files, count);
            Assert.All(shards, s => Assert.InRange(s, 0, count - 1));
            // Exactly once: the K views (Assign) partition the files.
            var seen = new int[files.Count];
            for (var k = 1; k <= count; k++)
            {
                var mine = Sharding.Assign(files, new ShardSpec(k, count));
                for (var i = 0; i < files.Count; i++) if (mine[i]) seen[i]++;
            }
            Assert.All(seen, n => Assert.Equal(1, n));
            if (files.Count == 0) continue;
            var loads = Enumerable.Range(0, count).Select(s => files.Where((_, i) => shards[i] == s).Sum(f => f.Size)).ToList();
            Assert.True(loads.Max() - loads.Min() <= files.Max(f => f.Size), $"round {round}: loads {string.Join(",", loads)}");
        }
    }

    [Fact]
    public void One_large_file_fills_its_shard_and_the_rest_is_spread()
    {
        var files = new List<(long, string)> { (1000, "0:big.sys") };
        files.AddRange(Enumerable.Range(0, 30).Select(i => (10L, $"0:small{i:D2}.sys")));
        var shards = Sharding.Shards(files, 3);
        Assert.Equal(0, shards[0]);
        Assert.DoesNotContain(0, shards.Skip(1)); // shard 1 already holds more than the rest together
        Assert.Equal(15, shards.Count(s => s == 1));
        Assert.Equal(15, shards.Count(s => s == 2));
    }

    [Fact]
    public void The_split_does_not_depend_on_where_the_corpus_is_mounted()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        foreach (var dir in new[] { a, b })
            for (var i = 0; i < 12; i++)
                dir.File($"store/sub{i % 3}/d{i}.sys", new byte[100 + (i % 4) * 7]); // equal sizes: only the key breaks ties
        // b lists its files in another order: the split must not depend on it either.
        var splits = new[] { (a, false), (b, true) }.Select(x =>
        {
            var root = Path.Combine(x.Item1.Path, "store");
            var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
            if (x.Item2) files.Reverse();
            var shards = Sharding.Shards([.. files.Select(f => (new FileInfo(f).Length, Sharding.KeyOf(f, [root])))], 3);
            return files.Select((f, i) => (Path.GetRelativePath(root, f), shards[i])).Order().ToList();
        }).ToList();
        Assert.Equal(splits[0], splits[1]);
        Assert.Equal(3, splits[0].Select(x => x.Item2).Distinct().Count());
    }

    [Fact]
    public void Shards_of_a_crawl_cover_it_exactly_once_through_the_cli()
    {
        var full = Paths(CliRunner.Run(RepoPaths.Root, "inventory", "tests/fixtures/bin"));
        Assert.True(full.Count >= 10);
        var union = new List<string>();
        for (var k = 1; k <= 3; k++)
        {
            var part = Paths(CliRunner.Run(RepoPaths.Root, "inventory", "--shard", $"{k}/3", "tests/fixtures/bin"));
            Assert.NotEmpty(part);
            union.AddRange(part);
        }
        Assert.Equal(full.Order(StringComparer.Ordinal), union.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Crawl_problems_are_reported_by_shard_one_only()
    {
        using var dir = new TempDir();
        for (var i = 0; i < 4; i++) dir.File($"d{i}.sys", File.ReadAllBytes(RepoPaths.Fixture("x64", "pool_legacy.sys")));
        File.CreateSymbolicLink(Path.Combine(dir.Path, "dangling.sys"), Path.Combine(dir.Path, "nowhere"));
        var one = CliRunner.Run(dir.Path, "scan", "-f", "json", "--shard", "1/2", ".");
        var two = CliRunner.Run(dir.Path, "scan", "-f", "json", "--shard", "2/2", ".");
        Assert.Contains("dangling.sys", one.Stdout);
        Assert.DoesNotContain("dangling.sys", two.Stdout);
        Assert.Contains("d1.sys", two.Stdout); // shard 2 did get files
    }

    private static List<string> Paths(CliRunner.Outcome r) =>
        [.. r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => e.GetProperty("path").GetString() + "!" + e.GetProperty("module").ToString())];
}
