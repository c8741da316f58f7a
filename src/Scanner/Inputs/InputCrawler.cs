using Microsoft.Extensions.FileSystemGlobbing;

namespace DriverAudit.Scanner.Inputs;

/// <summary>Which files a directory walk keeps.</summary>
public sealed record CrawlOptions(IReadOnlyList<string> Includes, IReadOnlyList<string> Excludes, bool FollowSymlinks = true)
{
    public static IReadOnlyList<string> DefaultIncludes { get; } = ["**/*.sys", "**/*.dmp"];
}

/// <summary>
/// Turns command-line paths into a stream of files, lazily and in a stable order (entries sorted
/// ordinally), so output diffs cleanly and memory does not grow with the tree. Symlinked directories
/// are followed once: a directory whose real path was already entered is a loop and is reported.
/// </summary>
public sealed class InputCrawler
{
    private readonly CrawlOptions _options;
    private readonly SourceRoot _root;
    private readonly Matcher _matcher;

    public InputCrawler(CrawlOptions options, SourceRoot root)
    {
        _options = options;
        _root = root;
        // Windows file names are case-insensitive; so are our globs.
        _matcher = new Matcher(StringComparison.OrdinalIgnoreCase);
        _matcher.AddIncludePatterns(options.Includes.Count > 0 ? options.Includes : CrawlOptions.DefaultIncludes);
        _matcher.AddExcludePatterns(options.Excludes);
    }

    public IEnumerable<InputItem> Enumerate(IEnumerable<string> paths)
    {
        var list = paths.ToList();
        // Only several arguments can name one file twice; with one, remember nothing, so memory does not
        // grow with the number of files.
        HashSet<string>? seenFiles = list.Count > 1 ? new(StringComparer.Ordinal) : null;
        foreach (var raw in list)
        {
            string? full = null, invalid = null;
            try { full = Path.GetFullPath(raw); }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { invalid = e.Message; }
            if (full is null)
            {
                yield return new InputProblem(raw, raw, "DA0002", $"'{raw}' is not a valid path: {invalid}");
                continue;
            }

            if (IsDanglingLink(full))
            {
                yield return new InputProblem(full, _root.UriFor(full), "DA0003", $"'{raw}' is a symbolic link whose target does not exist.");
            }
            else if (Directory.Exists(full))
            {
                foreach (var item in Walk(full, seenFiles))
                    yield return item;
            }
            else if (File.Exists(full))
            {
                if (seenFiles?.Add(full) ?? true) yield return new InputFile(full, _root.UriFor(full), Explicit: true);
            }
            else
            {
                yield return new InputProblem(full, _root.UriFor(full), "DA0001", $"'{raw}' does not exist.");
            }
        }
    }

    private IEnumerable<InputItem> Walk(string top, HashSet<string>? seenFiles)
    {
        // Real paths of the directories entered so far: entering one twice means a link loop
        // (or two links to the same tree, which would only scan it twice).
        var entered = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(top);
        while (stack.Count > 0)
        {
            var dir = stack.Pop();
            var real = RealPath(dir);
            if (!entered.Add(real))
            {
                yield return new InputProblem(dir, _root.UriFor(dir), "DA0004",
                    $"'{dir}' leads back to '{real}', which is already being scanned (symbolic link loop); skipped.");
                continue;
            }

            List<FileSystemInfo> entries;
            string? error = null;
            try
            {
                entries = new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions
                {
                    IgnoreInaccessible = false,
                    AttributesToSkip = 0,
                    RecurseSubdirectories = false,
                    ReturnSpecialDirectories = false,
                }).ToList();
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException or System.Security.SecurityException)
            {
                entries = [];
                error = e.Message;
            }
            if (error is not null)
            {
                yield return new InputProblem(dir, _root.UriFor(dir), "DA0005", $"Cannot list directory '{dir}': {error}");
                continue;
            }

            entries.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
            // Push subdirectories in reverse so they pop in ascending order; files first, then subdirectories.
            var subdirs = new List<string>();
            foreach (var entry in entries)
            {
                var isLink = entry.LinkTarget is not null;
                if (entry is DirectoryInfo || (isLink && IsDirectoryLink(entry)))
                {
                    if (isLink && !_options.FollowSymlinks) continue;
                    subdirs.Add(entry.FullName);
                    continue;
                }

                var relativeToTop = Path.GetRelativePath(top, entry.FullName).Replace(Path.DirectorySeparatorChar, '/');
                if (!_matcher.Match(relativeToTop).HasMatches) continue;
                if (isLink && IsDanglingLink(entry.FullName))
                {
                    yield return new InputProblem(entry.FullName, _root.UriFor(entry.FullName), "DA0003",
                        $"'{entry.FullName}' is a symbolic link whose target does not exist.");
                    continue;
                }
                if (seenFiles is not null && !seenFiles.Add(entry.FullName)) continue;
                yield return new InputFile(entry.FullName, _root.UriFor(entry.FullName), Explicit: false);
            }
            for (var i = subdirs.Count - 1; i >= 0; i--) stack.Push(subdirs[i]);
        }
    }

    private static bool IsDirectoryLink(FileSystemInfo entry)
    {
        try { return entry.ResolveLinkTarget(returnFinalTarget: true) is DirectoryInfo { Exists: true }; }
        catch (IOException) { return false; } // a loop of links that never reaches a target
    }

    /// <summary>A link whose final target does not exist (File.Exists is true for the link itself on Unix).</summary>
    private static bool IsDanglingLink(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is null) return false;
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            return target is null || !(File.Exists(target.FullName) || Directory.Exists(target.FullName));
        }
        catch (IOException) { return true; } // a cycle of links never reaches a target
    }

    /// <summary>Resolves every symbolic link along <paramref name="path"/> (like realpath(3)), bounded.</summary>
    internal static string RealPath(string path, int depth = 0)
    {
        var full = Path.GetFullPath(path);
        var root = Path.GetPathRoot(full) ?? "/";
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = root;
        foreach (var part in parts)
        {
            current = Path.Combine(current, part);
            FileSystemInfo? target = null;
            try
            {
                var info = new DirectoryInfo(current);
                if (info.LinkTarget is not null) target = info.ResolveLinkTarget(returnFinalTarget: true);
            }
            catch (IOException) { } // too many levels of links: keep the unresolved name
            // 40 nested resolutions is Linux's ELOOP limit; past it keep the name as is.
            if (target is not null && depth < 40) current = RealPath(target.FullName, depth + 1);
        }
        return current;
    }
}
