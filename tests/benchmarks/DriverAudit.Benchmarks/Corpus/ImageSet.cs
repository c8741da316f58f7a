using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;

namespace DriverAudit.Benchmarks.Corpus;

/// <summary>
/// A named list of PE files a benchmark runs over. Its string form is the benchmark parameter shown in the
/// tables; <see cref="Count"/> lets the per-image columns divide a measurement by the number of images.
/// </summary>
public sealed class ImageSet(string name, IReadOnlyList<string> paths)
{
    public string Name { get; } = name;
    public IReadOnlyList<string> Paths { get; } = paths;
    public int Count => Paths.Count;
    public long TotalBytes => Paths.Sum(p => new FileInfo(p).Length);

    public override string ToString() => $"{Name} ({Count})";

    /// <summary>Every fixture that opens as a PE (x64, x86, kernel images; the deliberately broken ones are left out), sorted.</summary>
    public static ImageSet FixtureCorpus() => new("fixtures", FixturePes());

    /// <summary>The largest fixture PE by file size (ties broken by path, so the choice is stable).</summary>
    public static ImageSet LargestFixture()
    {
        var largest = FixturePes().OrderByDescending(p => new FileInfo(p).Length).ThenBy(p => p, StringComparer.Ordinal).First();
        return new("largest fixture " + Path.GetFileName(largest), [largest]);
    }

    /// <summary>The synthetic driver built by tests/benchmarks/data/make-large-driver.py.</summary>
    private static string LargeDriver => Path.Combine(RepoPaths.Root, "tests", "benchmarks", "data", "large_driver.sys");

    /// <summary>tests/benchmarks/data/large_driver.sys: ~137 KB, 2000 allocation call sites.</summary>
    public static ImageSet SyntheticLarge()
    {
        if (!File.Exists(LargeDriver))
            throw new FileNotFoundException("run tests/benchmarks/data/make-large-driver.py first", LargeDriver);
        return new("large-driver", [LargeDriver]);
    }

    /// <summary>
    /// One of Wine's x64 PE builds (Debian's libwine; another folder through DRIVERAUDIT_WINE_X64), or null when it
    /// is not there: benchmarks over it are left out rather than failing.
    /// </summary>
    public static ImageSet? WineImage(string name)
    {
        var folder = Environment.GetEnvironmentVariable("DRIVERAUDIT_WINE_X64") is { Length: > 0 } set ? set : "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows";
        var path = Path.Combine(folder, name);
        return File.Exists(path) ? new("wine " + name, [path]) : null;
    }

    private static List<string> FixturePes()
    {
        var list = new List<string>();
        foreach (var path in Directory.EnumerateFiles(RepoPaths.FixtureBin, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (!(path.EndsWith(".sys", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".exe", StringComparison.OrdinalIgnoreCase)
                  || path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))) continue;
            using var source = FileImageSource.Open(path);
            if (PeImage.TryOpen(source).Image is not null) list.Add(path);
        }
        if (list.Count == 0) throw new InvalidOperationException("no PE fixtures under " + RepoPaths.FixtureBin);
        return list;
    }
}
