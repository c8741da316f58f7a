using DriverAudit.Scanner.Inputs;
using Xunit;

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
    public void The_file_system_root_as_source_root_gives_relative_uris()
    {
        // Scanning from cwd "/" made the root "/" and its base URI "//", which System.Uri rejects: a crash, not a report.
        var root = new SourceRoot("/");
        Assert.Equal("file:///", root.AsFileUri);
        Assert.Equal("work/x/a.sys", root.UriFor("/work/x/a.sys"));
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

    [Fact]
    public void A_fifo_named_like_a_driver_is_skipped_without_being_opened()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        t.File("a.sys", [1]);
        UnixFiles.Fifo(System.IO.Path.Combine(t.Path, "pipe.sys"));
        UnixFiles.Fifo(System.IO.Path.Combine(t.Path, "named.sys"));

        // Opening either FIFO would block this test forever (no writer ever comes).
        var items = Crawl(t, [".", "named.sys"]);

        Assert.Equal(["a.sys"], items.OfType<InputFile>().Select(f => f.Uri));
        var skipped = items.OfType<InputProblem>().ToList();
        Assert.Equal(["named.sys", "pipe.sys"], skipped.Select(p => p.Uri).Order());
        Assert.All(skipped, p => { Assert.Equal("DA0006", p.Code); Assert.Contains("FIFO", p.Message); });
    }

    [Fact]
    public void A_device_named_on_the_command_line_is_skipped()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        var items = new InputCrawler(new CrawlOptions([], []), new SourceRoot(t.Path)).Enumerate(["/dev/zero"]).ToList();
        var problem = Assert.IsType<InputProblem>(Assert.Single(items));
        Assert.Equal("DA0006", problem.Code);
        Assert.Contains("character device", problem.Message);
    }

    [Fact]
    public void A_link_to_the_file_system_root_is_a_loop_not_a_walk_of_the_machine()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        t.File("top/a.sys", [1]);
        Directory.CreateSymbolicLink(System.IO.Path.Combine(t.Path, "top", "root"), "/");
        Directory.CreateSymbolicLink(System.IO.Path.Combine(t.Path, "top", "parent"), t.Path);

        var items = Crawl(t, ["top"]);

        Assert.Equal(["top/a.sys"], items.OfType<InputFile>().Select(f => f.Uri));
        var loops = items.OfType<InputProblem>().ToList();
        Assert.Equal(["top/parent", "top/root"], loops.Select(p => p.Uri));
        Assert.All(loops, p => Assert.Equal("DA0004", p.Code));
    }

    [Fact]
    public void A_tree_deeper_than_PATH_MAX_is_a_notification_and_the_walk_goes_on()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        var name = new string('d', 200);
        t.File("a.sys", [1]);
        UnixFiles.DeepChain(t.Path, "deep", name, depth: 25, leaf: "bottom.sys"); // 25 × 201 characters > 4,096
        t.File("deep/" + name + "/mid.sys", [1]);
        t.File("z.sys", [1]);
        try
        {
            var items = Crawl(t, ["."]);

            Assert.Equal(["a.sys", "z.sys", "deep/" + name + "/mid.sys"], items.OfType<InputFile>().Select(f => f.Uri));
            var problem = Assert.Single(items.OfType<InputProblem>());
            Assert.Equal("DA0005", problem.Code);
            Assert.True(problem.FullPath.Length > 4096 - 201, problem.FullPath.Length.ToString());
        }
        finally
        {
            UnixFiles.DeleteDeepChain(t.Path, "deep", name);
        }
    }

    [Fact]
    public void Uris_of_very_long_paths_are_still_made()
    {
        var root = new SourceRoot("/src");
        var deep = "/src/" + string.Join('/', Enumerable.Repeat(new string('x', 250), 300)) + "/a.sys";
        Assert.EndsWith("/a.sys", root.UriFor(deep));
        Assert.False(root.UriFor(deep).StartsWith('/'));
        Assert.StartsWith("file:///other/", root.UriFor("/other" + deep));
    }
}
