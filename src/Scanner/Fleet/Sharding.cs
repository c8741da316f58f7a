using System.CommandLine;
using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// <c>--shard K/N</c>: the part of a crawl that worker K of N scans, so N workers of an engine people already run (a CI
/// matrix, a Kubernetes Indexed Job) cover a corpus exactly once. The split is a pure function of each file's size and
/// its path relative to the command-line argument it was found under, so every machine that sees the same corpus
/// computes the same split, whatever its mount point. Files are dealt largest first to the least-loaded shard (ties:
/// the lower shard), which keeps any two shards' byte totals within the size of one file. Crawl problems (a missing
/// path, a link loop) are reported by shard 1 only. The crawl is listed in full (names and sizes, not contents) first.
/// </summary>
internal readonly record struct ShardSpec(int Index, int Count)
{
    public const int MaxCount = 100_000;

    /// <summary>Parses "K/N" (1 ≤ K ≤ N).</summary>
    public static bool TryParse(string text, out ShardSpec spec, out string error)
    {
        spec = default;
        var slash = text.IndexOf('/');
        if (slash <= 0 || !int.TryParse(text.AsSpan(0, slash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k)
            || !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
        {
            error = $"--shard expects K/N (e.g. 2/8), got '{text}'.";
            return false;
        }
        if (n < 1 || n > MaxCount || k < 1 || k > n)
        {
            error = $"--shard {text}: K must be between 1 and N, and N between 1 and {MaxCount}.";
            return false;
        }
        spec = new ShardSpec(k, n);
        error = "";
        return true;
    }

    public static Option<string?> CreateOption()
    {
        var option = new Option<string?>("--shard")
        {
            Description = "K/N: scan only the K-th of N deterministic, size-balanced parts of the inputs (1-based), so N workers " +
                          "cover them exactly once. The same on every machine that sees the same files under the same arguments.",
        };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } v && !TryParse(v, out _, out var error)) r.AddError(error);
        });
        return option;
    }
}

internal static class Sharding
{
    /// <param name="arguments">The command-line paths, resolved (their order is part of the identity of a file).</param>
    public static IEnumerable<InputItem> Select(IEnumerable<InputItem> items, ShardSpec spec, IReadOnlyList<string> arguments)
    {
        var all = items.ToList();
        var files = new List<(int Position, long Size, string Key)>();
        for (var i = 0; i < all.Count; i++)
            if (all[i] is InputFile f) files.Add((i, SizeOf(f.FullPath), KeyOf(f.FullPath, arguments)));

        var mine = Assign(files.Select(f => (f.Size, f.Key)).ToList(), spec);
        var keep = new bool[all.Count];
        for (var i = 0; i < files.Count; i++) keep[files[i].Position] = mine[i];
        for (var i = 0; i < all.Count; i++)
            if (keep[i] || (all[i] is InputProblem && spec.Index == 1))
                yield return all[i];
    }

    /// <summary>For each file (size, key): whether it belongs to <paramref name="spec"/>'s shard. Largest first, to the lightest shard.</summary>
    internal static bool[] Assign(IReadOnlyList<(long Size, string Key)> files, ShardSpec spec) =>
        [.. Shards(files, spec.Count).Select(s => s == spec.Index - 1)];

    /// <summary>The 0-based shard of every file.</summary>
    internal static int[] Shards(IReadOnlyList<(long Size, string Key)> files, int count)
    {
        var order = Enumerable.Range(0, files.Count).ToArray();
        Array.Sort(order, (a, b) =>
        {
            var bySize = files[b].Size.CompareTo(files[a].Size);
            return bySize != 0 ? bySize : string.CompareOrdinal(files[a].Key, files[b].Key);
        });
        var lightest = new PriorityQueue<int, (long Load, int Shard)>(Comparer<(long Load, int Shard)>.Create((x, y) =>
            x.Load != y.Load ? x.Load.CompareTo(y.Load) : x.Shard.CompareTo(y.Shard)));
        for (var s = 0; s < count; s++) lightest.Enqueue(s, (0, s));
        var result = new int[files.Count];
        foreach (var i in order)
        {
            lightest.TryDequeue(out var shard, out var load);
            result[i] = shard;
            lightest.Enqueue(shard, (load.Load + files[i].Size, shard));
        }
        return result;
    }

    /// <summary>"argument index:path relative to that argument" — independent of where the corpus is mounted.</summary>
    internal static string KeyOf(string fullPath, IReadOnlyList<string> arguments)
    {
        for (var i = 0; i < arguments.Count; i++)
        {
            var root = Path.TrimEndingDirectorySeparator(arguments[i]);
            if (fullPath == root) return $"{i}:{Path.GetFileName(fullPath)}";
            if (fullPath.Length > root.Length && fullPath.StartsWith(root, StringComparison.Ordinal) && fullPath[root.Length] == Path.DirectorySeparatorChar)
                return $"{i}:{fullPath[(root.Length + 1)..].Replace(Path.DirectorySeparatorChar, '/')}";
        }
        return fullPath;
    }

    private static long SizeOf(string path)
    {
        try { return new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; } // the scan reports it
    }
}
