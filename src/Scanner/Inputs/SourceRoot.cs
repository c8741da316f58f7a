namespace DriverAudit.Scanner.Inputs;

/// <summary>
/// The folder SARIF URIs are relative to (%SRCROOT%). GitHub resolves results against the repository
/// root, so URIs must be relative, forward-slashed and free of "..".
/// </summary>
internal sealed class SourceRoot
{
    public SourceRoot(string path)
    {
        FullPath = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
    }

    public string FullPath { get; }

    /// <summary>"file:///..." form of the root, ending with a slash (SARIF originalUriBaseIds).</summary>
    public string AsFileUri => new Uri(WithSeparator).AbsoluteUri;

    /// <summary>The root with one trailing separator: the file-system root ("/", "C:\\") already has it.</summary>
    private string WithSeparator => Path.EndsInDirectorySeparator(FullPath) ? FullPath : FullPath + Path.DirectorySeparatorChar;

    /// <summary>The URI to report for a file: relative when under the root, else an absolute file URI.</summary>
    public string UriFor(string fullPath)
    {
        if (TryRelative(fullPath, out var relative)) return relative;
        try { return new Uri(fullPath).AbsoluteUri; }
        catch (UriFormatException) // longer than System.Uri accepts (65,519 characters): escape it ourselves
        {
            return "file://" + string.Join('/', fullPath.Replace(Path.DirectorySeparatorChar, '/').Split('/').Select(Uri.EscapeDataString));
        }
    }

    /// <summary>
    /// A prefix test on full paths (the crawler only produces normalised ones). Path.GetRelativePath is not used:
    /// it throws on paths longer than the system's PATH_MAX, which a deep tree reaches.
    /// </summary>
    private bool TryRelative(string fullPath, out string relative)
    {
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var root = WithSeparator;
        if (!fullPath.StartsWith(root, comparison) || fullPath.Length == root.Length)
        {
            relative = "";
            return false;
        }
        relative = fullPath[root.Length..].Replace(Path.DirectorySeparatorChar, '/');
        return true;
    }
}
