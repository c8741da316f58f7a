using Microsoft.Extensions.FileSystemGlobbing;

namespace DriverAudit.Scanner.Inputs;

/// <summary>Which files a directory walk keeps.</summary>
internal sealed record CrawlOptions(IReadOnlyList<string> Includes, IReadOnlyList<string> Excludes, bool FollowSymlinks = true)
{
    public static IReadOnlyList<string> DefaultIncludes { get; } = ["**/*.sys", "**/*.dmp"];
}

/// <summary>
/// Turns command-line paths into a stream of files, lazily and in a stable order (entries sorted
/// ordinally), so output diffs cleanly and memory does not grow with the tree. Symlinked directories
/// are followed once: a directory whose real path was already entered is a loop and is reported.
/// </summary>
internal sealed class InputCrawler
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
            if (full is { Length: 0 }) (full, invalid) = (null, "it is longer than the system resolves"); // GetFullPath gives "" past PATH_MAX
            if (full is null)
            {
                yield return new InputProblem(raw, raw, "DA0002", $"'{raw}' is not a valid path: {invalid}");
                continue;
            }

            if (IsDanglingLink(full))
            {
                yield return new InputProblem(full, _root.UriFor(full), "DA0003", $"'{raw}' is a symbolic link whose target does not exist.");
            }
            else if (FileKinds.Of(full) is var kind && kind == FileKind.Directory)
            {
                foreach (var item in Guarded(Walk(full, seenFiles), full))
                    yield return item;
            }
            else if (kind == FileKind.Regular)
            {
                if (seenFiles?.Add(full) ?? true) yield return new InputFile(full, _root.UriFor(full), Explicit: true);
            }
            else if (kind == FileKind.Missing)
            {
                yield return new InputProblem(full, _root.UriFor(full), "DA0001", $"'{raw}' does not exist.");
            }
            else if (seenFiles?.Add(full) ?? true)
            {
                yield return SpecialFile(full, kind);
            }
        }
    }

    private IEnumerable<InputItem> Walk(string top, HashSet<string>? seenFiles)
    {
        // Real paths of the directories entered so far: entering one twice means a link loop
        // (or two links to the same tree, which would only scan it twice).
        var entered = new HashSet<string>(StringComparer.Ordinal);
        var realTop = RealPath(top);
        var stack = new Stack<string>();
        stack.Push(top);
        while (stack.Count > 0)
        {
            var dir = stack.Pop();
            var real = RealPath(dir);
            // A link to a folder above the scanned one (a link to '/' is the extreme case) would walk the whole
            // machine before coming back to the scanned folder: it is a loop too.
            if (dir != top && IsAncestor(real, realTop))
            {
                yield return new InputProblem(dir, _root.UriFor(dir), "DA0004",
                    $"'{dir}' leads to '{real}', which holds the folder being scanned (symbolic link loop); skipped.");
                continue;
            }
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
                // Joined here: FileSystemInfo.FullName is empty for paths longer than PATH_MAX.
                var path = Path.Join(dir, entry.Name);
                bool isLink;
                try { isLink = entry.LinkTarget is not null; }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { isLink = false; } // unreadable link: treat as a file
                if (entry is DirectoryInfo || (isLink && IsDirectoryLink(entry)))
                {
                    if (isLink && !_options.FollowSymlinks) continue;
                    subdirs.Add(path);
                    continue;
                }

                // Every entry lies under top (paths are joined, not resolved); Path.GetRelativePath would throw past PATH_MAX.
                var relativeToTop = path[(Path.EndsInDirectorySeparator(top) ? top.Length : top.Length + 1)..].Replace(Path.DirectorySeparatorChar, '/');
                if (!_matcher.Match(relativeToTop).HasMatches) continue;
                if (isLink && IsDanglingLink(path))
                {
                    yield return new InputProblem(path, _root.UriFor(path), "DA0003",
                        $"'{path}' is a symbolic link whose target does not exist.");
                    continue;
                }
                // Opening a FIFO blocks until a writer comes, a device may never end: never open them.
                if (FileKinds.Of(path) is var kind && kind != FileKind.Regular)
                {
                    if (seenFiles is not null && !seenFiles.Add(path)) continue;
                    yield return kind == FileKind.Missing
                        ? new InputProblem(path, _root.UriFor(path), "DA0001", $"'{path}' vanished while the folder was being walked.")
                        : SpecialFile(path, kind);
                    continue;
                }
                if (seenFiles is not null && !seenFiles.Add(path)) continue;
                yield return new InputFile(path, _root.UriFor(path), Explicit: false);
            }
            for (var i = subdirs.Count - 1; i >= 0; i--) stack.Push(subdirs[i]);
        }
    }

    /// <summary>
    /// The walk of one folder, with any failure the walk itself did not foresee turned into a notification that
    /// ends that folder's walk: the other arguments, and everything already found, are still scanned.
    /// </summary>
    private IEnumerable<InputItem> Guarded(IEnumerable<InputItem> items, string top)
    {
        using var walk = items.GetEnumerator();
        while (true)
        {
            string? error;
            try
            {
                if (!walk.MoveNext()) yield break;
                error = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or System.Security.SecurityException)
            {
                error = e.Message;
            }
            if (error is not null)
            {
                yield return new InputProblem(top, _root.UriFor(top), "DA0005", $"The walk of '{top}' stopped early: {error}");
                yield break;
            }
            yield return walk.Current;
        }
    }

    private InputProblem SpecialFile(string path, FileKind kind) =>
        new(path, _root.UriFor(path), "DA0006", $"'{path}' is {FileKinds.Describe(kind)}, not a regular file; skipped without opening it.");

    /// <summary>True when <paramref name="ancestor"/> is <paramref name="path"/> or a folder above it (both real, full paths).</summary>
    private static bool IsAncestor(string ancestor, string path)
    {
        var a = Path.TrimEndingDirectorySeparator(ancestor);
        if (a == Path.GetPathRoot(a)) return true; // the root is above everything
        return path == a || (path.StartsWith(a, StringComparison.Ordinal) && path.Length > a.Length && path[a.Length] == Path.DirectorySeparatorChar);
    }

    private static bool IsDirectoryLink(FileSystemInfo entry)
    {
        try { return entry.ResolveLinkTarget(returnFinalTarget: true) is DirectoryInfo { Exists: true }; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; } // a loop of links that never reaches a target
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; } // a cycle of links never reaches a target
    }

    /// <summary>
    /// Resolves every symbolic link along <paramref name="path"/> (like realpath(3)), bounded. Never throws: a
    /// component that cannot be resolved (too long, unreadable, a link loop) is kept as named.
    /// </summary>
    internal static string RealPath(string path, int depth = 0)
    {
        try { return RealPathCore(path, depth); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return path;
        }
    }

    private static string RealPathCore(string path, int depth)
    {
        var full = Path.GetFullPath(path);
        if (full.Length == 0) return path; // longer than the system resolves
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
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // too many levels of links, too long: keep the name
            // 40 nested resolutions is Linux's ELOOP limit; past it keep the name as is.
            if (target is not null && depth < 40) current = RealPath(target.FullName, depth + 1);
        }
        return current;
    }
}
