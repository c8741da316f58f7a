namespace DriverAudit.Scanner.Inputs;

/// <summary>
/// The folder SARIF URIs are relative to (%SRCROOT%). GitHub resolves results against the repository
/// root, so URIs must be relative, forward-slashed and free of "..".
/// </summary>
public sealed class SourceRoot
{
    public SourceRoot(string path)
    {
        FullPath = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
    }

    public string FullPath { get; }

    /// <summary>"file:///..." form of the root, ending with a slash (SARIF originalUriBaseIds).</summary>
    public string AsFileUri => new Uri(FullPath + Path.DirectorySeparatorChar).AbsoluteUri;

    /// <summary>The URI to report for a file: relative when under the root, else an absolute file URI.</summary>
    public string UriFor(string fullPath) =>
        TryRelative(fullPath, out var relative) ? relative : new Uri(fullPath).AbsoluteUri;

    private bool TryRelative(string fullPath, out string relative)
    {
        relative = Path.GetRelativePath(FullPath, fullPath);
        if (relative == "." || relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
            return false;
        relative = relative.Replace(Path.DirectorySeparatorChar, '/');
        return true;
    }
}
