using Xunit;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Tests.TestSupport;

namespace DriverAudit.Scanner.Tests.Inputs;

public sealed class InputCrawlerTests
{
    private static List<InputItem> Crawl(TempDir t, string[] paths, string[]? includes = null, string[]? excludes = null) =>
        new InputCrawler(new CrawlOptions(includes ?? [], excludes ?? []), new SourceRoot(t.Path))
            .Enumerate(paths.Select(p => System.IO.Path.Combine(t.Path, p))).ToList();

    [Fact]
    public void Walks_recursively_in_sorted_order_with_default_glob()
    {
        using var t = new TempDir();
        t.File("b/z.sys", [1]);
        t.File("b/a.SYS", [1]);
        t.File("a.sys", [1]);
        t.File("c/d/e.sys", [1]);
        t.File("notes.txt", [1]);
        t.File("b/x.dll", [1]);

        var uris = Crawl(t, ["."]).Select(i => i.Uri).ToList();

        Assert.Equal(["a.sys", "b/a.SYS", "b/z.sys", "c/d/e.sys"], uris);
    }

    [Fact]
    public void Include_and_exclude_globs_apply_inside_folders_but_explicit_files_are_always_scanned()
    {
        using var t = new TempDir();
        t.File("drv/a.sys", [1]);
        t.File("drv/b.dll", [1]);
        t.File("drv/skip/c.sys", [1]);
        t.File("other.bin", [1]);

        var items = Crawl(t, ["drv", "other.bin"], includes: ["**/*.sys", "**/*.dll"], excludes: ["skip/**"]);

        Assert.Equal(["drv/a.sys", "drv/b.dll", "other.bin"], items.Select(i => i.Uri));
        Assert.True(items.OfType<InputFile>().Single(f => f.Uri == "other.bin").Explicit);
        Assert.False(items.OfType<InputFile>().Single(f => f.Uri == "drv/a.sys").Explicit);
    }

    [Fact]
    public void Missing_paths_and_dangling_links_become_problems_and_the_walk_goes_on()
    {
        using var t = new TempDir();
        t.File("ok.sys", [1]);
        File.CreateSymbolicLink(System.IO.Path.Combine(t.Path, "dangling.sys"), System.IO.Path.Combine(t.Path, "nowhere.sys"));

        var items = Crawl(t, ["missing.sys", "."]);

        var problems = items.OfType<InputProblem>().ToList();
        Assert.Contains(problems, p => p.Code == "DA0001" && p.Uri == "missing.sys");
        Assert.Contains(problems, p => p.Code == "DA0003" && p.Uri == "dangling.sys");
        Assert.Contains(items.OfType<InputFile>(), f => f.Uri == "ok.sys");
    }

    [Fact]
    public void A_symlink_loop_is_reported_once_and_does_not_hang()
    {
        using var t = new TempDir();
        t.File("top/a.sys", [1]);
        Directory.CreateSymbolicLink(System.IO.Path.Combine(t.Path, "top", "loop"), System.IO.Path.Combine(t.Path, "top"));

        var items = Crawl(t, ["top"]);

        Assert.Single(items.OfType<InputFile>());
        var loop = Assert.Single(items.OfType<InputProblem>());
        Assert.Equal("DA0004", loop.Code);
    }

    [Fact]
    public void A_file_named_twice_is_scanned_once()
    {
        using var t = new TempDir();
        t.File("a.sys", [1]);
        var items = Crawl(t, ["a.sys", ".", "a.sys"]);
        Assert.Single(items);
    }

    [Fact]
    public void Uris_outside_the_source_root_are_absolute_file_uris()
    {
        using var t = new TempDir();
        var file = t.File("x/a.sys", [1]);
        var root = new SourceRoot(System.IO.Path.Combine(t.Path, "elsewhere"));
        Assert.StartsWith("file:///", root.UriFor(file));
        Assert.Equal("x/a.sys", new SourceRoot(t.Path).UriFor(file));
    }

    [Fact]
    public void Enumeration_is_lazy()
    {
        using var t = new TempDir();
        for (var i = 0; i < 50; i++) t.File($"d{i:00}/f.sys", [1]);
        using var e = new InputCrawler(new CrawlOptions([], []), new SourceRoot(t.Path)).Enumerate([t.Path]).GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.Equal("d00/f.sys", e.Current.Uri);
    }

    [Fact]
    public void A_symlink_to_a_folder_named_on_the_command_line_is_walked()
    {
        using var t = new TempDir();
        t.File("real/a.sys", [1]);
        Directory.CreateSymbolicLink(System.IO.Path.Combine(t.Path, "link"), System.IO.Path.Combine(t.Path, "real"));
        var items = Crawl(t, ["link"]);
        Assert.Equal(["link/a.sys"], items.Select(i => i.Uri));
    }
}
