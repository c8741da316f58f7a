namespace DriverAudit.Scanner.Inputs;

/// <summary>One thing the crawler produced, in deterministic order: a file to analyse or a problem to report.</summary>
internal abstract record InputItem(string FullPath, string Uri)
{
    /// <summary>For people (messages, text output): the relative path, or the local path when outside the source root.</summary>
    public string DisplayPath => Uri.StartsWith("file:", StringComparison.Ordinal) ? FullPath : Uri;
}

/// <summary>A file to analyse.</summary>
/// <param name="FullPath">Absolute path.</param>
/// <param name="Uri">Forward-slash path relative to the source root, or an absolute file URI when outside it.</param>
/// <param name="Explicit">Named on the command line (always scanned, whatever the globs say).</param>
internal sealed record InputFile(string FullPath, string Uri, bool Explicit) : InputItem(FullPath, Uri);

/// <summary>A path that could not be walked or opened (loop, permission, missing).</summary>
internal sealed record InputProblem(string FullPath, string Uri, string Code, string Message) : InputItem(FullPath, Uri);
