using System.Text.RegularExpressions;

namespace DriverAudit.Scanner.Reporting.Sarif;

/// <summary>
/// The commit a scan ran on, read from the .git folder above the source root (no git process):
/// SARIF versionControlProvenance, so a log says which revision its results belong to.
/// </summary>
internal sealed record GitProvenance(string RepositoryUri, string? RevisionId, string? Branch)
{
    private const int MaxFileBytes = 1 << 20;

    public static GitProvenance? Find(string sourceRoot)
    {
        try
        {
            for (var dir = new DirectoryInfo(sourceRoot); dir is not null; dir = dir.Parent)
            {
                var git = Path.Combine(dir.FullName, ".git");
                if (Directory.Exists(git)) return Read(git);
                if (File.Exists(git)) return null; // worktree or submodule pointer: not worth guessing
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    private static GitProvenance? Read(string git)
    {
        var url = OriginUrl(ReadSmall(Path.Combine(git, "config")));
        if (url is null) return null; // SARIF needs an absolute repository URI
        var head = ReadSmall(Path.Combine(git, "HEAD"))?.Trim();
        string? branch = null, revision = null;
        if (head is not null && head.StartsWith("ref: ", StringComparison.Ordinal))
        {
            var reference = head[5..].Trim();
            branch = reference.StartsWith("refs/heads/", StringComparison.Ordinal) ? reference["refs/heads/".Length..] : null;
            revision = ReadSmall(Path.Combine(git, reference.Replace('/', Path.DirectorySeparatorChar)))?.Trim() ?? PackedRef(git, reference);
        }
        else if (head is not null)
        {
            revision = head; // detached HEAD, as in CI checkouts
        }
        if (revision is not null && !Regex.IsMatch(revision, "^[0-9a-f]{40}([0-9a-f]{24})?$")) revision = null;
        return new GitProvenance(url, revision, branch);
    }

    private static string? PackedRef(string git, string reference)
    {
        var packed = ReadSmall(Path.Combine(git, "packed-refs"));
        if (packed is null) return null;
        foreach (var line in packed.Split('\n'))
        {
            var parts = line.Trim().Split(' ');
            if (parts.Length == 2 && parts[1] == reference) return parts[0];
        }
        return null;
    }

    /// <summary>The origin remote as an absolute https URI (scp-style "git@host:org/repo.git" converted); credentials dropped.</summary>
    internal static string? OriginUrl(string? config)
    {
        if (config is null) return null;
        var inOrigin = false;
        foreach (var raw in config.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('[')) { inOrigin = line == "[remote \"origin\"]"; continue; }
            if (!inOrigin || !line.StartsWith("url", StringComparison.Ordinal)) continue;
            var value = line[(line.IndexOf('=') + 1)..].Trim();
            var scp = Regex.Match(value, @"^[\w.-]+@([\w.-]+):(.+)$");
            if (scp.Success) value = $"https://{scp.Groups[1].Value}/{scp.Groups[2].Value}";
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http" or "ssh" or "git")) return null;
            var builder = new UriBuilder(uri) { UserName = "", Password = "" };
            if (builder.Scheme is "ssh" or "git") { builder.Scheme = "https"; builder.Port = -1; }
            var text = builder.Uri.AbsoluteUri;
            return text.EndsWith(".git", StringComparison.Ordinal) ? text[..^4] : text;
        }
        return null;
    }

    private static string? ReadSmall(string path)
    {
        var info = new FileInfo(path);
        return info.Exists && info.Length <= MaxFileBytes ? File.ReadAllText(path) : null;
    }
}
