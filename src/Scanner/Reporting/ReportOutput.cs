using DriverAudit.Scanner.Inputs;

namespace DriverAudit.Scanner.Reporting;

/// <summary>The output path cannot be written; the message is complete. The scan must not start (exit 2).</summary>
internal sealed class OutputRefusedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Where a report goes — the one place every format opens its output, so every format means the same by <c>-o</c>:
/// <list type="bullet">
/// <item><c>-</c> (or no <c>-o</c>): standard output.</item>
/// <item>a regular file, or a path that does not exist yet: replaced atomically (temporary file in the same
/// folder with the same permission bits, renamed into place only when the report is complete).</item>
/// <item>a symbolic link: followed; its final target is replaced atomically and the link stays a link.</item>
/// <item>a FIFO, character device or other special file: opened and written directly, never renamed over
/// (<c>-o /dev/null</c> must not replace the device with a regular file).</item>
/// <item>a folder, a parent that is not a folder or cannot be written: <see cref="OutputRefusedException"/>
/// from <see cref="Open"/>, before any input is read.</item>
/// </list>
/// </summary>
internal sealed class ReportOutput : IDisposable
{
    private readonly AtomicFile? _atomic;
    private readonly FileStream? _direct;

    private ReportOutput(Stream stream, string? path, AtomicFile? atomic, FileStream? direct)
    {
        Stream = stream;
        Path = path;
        _atomic = atomic;
        _direct = direct;
    }

    /// <summary>The bytes of the report go here.</summary>
    public Stream Stream { get; }

    /// <summary>The file that receives the report (links followed), or null for standard output.</summary>
    public string? Path { get; }

    public bool IsStdout => Path is null;

    /// <summary>True when the report replaces a file by rename (false for stdout and special files).</summary>
    public bool IsAtomic => _atomic is not null;

    /// <summary>The temporary file of an atomic output (null otherwise).</summary>
    public string? TempPath => _atomic?.TempPath;

    public static ReportOutput Stdout(Stream stdout) => new(stdout, null, null, null);

    /// <summary>Opens <paramref name="path"/> as described on the class; <c>-</c> is <paramref name="stdout"/>.</summary>
    /// <exception cref="OutputRefusedException">The path is a folder, or cannot be created or opened for writing.</exception>
    public static ReportOutput Open(string path, Stream stdout)
    {
        if (path == "-") return Stdout(stdout);
        string full;
        try { full = System.IO.Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new OutputRefusedException($"cannot write '{path}': {e.Message}", e);
        }
        if (path.EndsWith('/') || path.EndsWith(System.IO.Path.DirectorySeparatorChar))
            throw new OutputRefusedException($"cannot write '{path}': it names a folder; give a file name, e.g. {System.IO.Path.Combine(path, "driveraudit.sarif")}");

        var target = full;
        try
        {
            // The link stays a link: what it points at (through a chain of links, dangling or not) is what gets replaced.
            for (var hops = 0; new FileInfo(target).LinkTarget is { } link; hops++)
            {
                if (hops == 40) throw new OutputRefusedException($"cannot write '{path}': too many levels of symbolic links");
                target = System.IO.Path.GetFullPath(link, System.IO.Path.GetDirectoryName(target)!);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OutputRefusedException($"cannot write '{path}': {e.Message}", e);
        }

        var kind = FileKinds.Of(target);
        try
        {
            switch (kind)
            {
                case FileKind.Directory:
                    throw new OutputRefusedException(
                        $"cannot write '{path}': it is a folder; give a file name, e.g. {System.IO.Path.Combine(path, "driveraudit.sarif")}");
                case FileKind.Regular or FileKind.Missing:
                    var parent = System.IO.Path.GetDirectoryName(target)!;
                    var parentKind = FileKinds.Of(parent);
                    if (parentKind is not (FileKind.Directory or FileKind.Missing))
                        throw new OutputRefusedException($"cannot write '{path}': '{parent}' is {FileKinds.Describe(parentKind)}, not a folder");
                    var atomic = new AtomicFile(target);
                    return new ReportOutput(atomic.Stream, target, atomic, null);
                default:
                    // A FIFO blocks here until a reader opens it: that is how FIFOs work, and nothing is read yet.
                    var direct = new FileStream(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16);
                    return new ReportOutput(direct, target, null, direct);
            }
        }
        catch (OutputRefusedException) { throw; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new OutputRefusedException($"cannot write '{path}': {e.Message}", e);
        }
    }

    /// <summary>The report is complete: flush, and for a regular file rename it into place.</summary>
    public void Commit()
    {
        if (_atomic is not null) _atomic.Commit();
        else Stream.Flush();
    }

    public void Dispose()
    {
        _atomic?.Dispose(); // deletes the temporary unless committed
        _direct?.Dispose();
    }
}
