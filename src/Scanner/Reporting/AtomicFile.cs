using System.Collections.Concurrent;

namespace DriverAudit.Scanner.Reporting;

/// <summary>
/// An output file that appears whole or not at all: written to a temporary file beside the target (same
/// folder, so the rename stays on one file system; same permission bits as the file it replaces) and
/// renamed over it on <see cref="Commit"/>. Disposing without committing deletes the temporary.
/// </summary>
internal sealed class AtomicFile : IDisposable
{
    private readonly string _target;
    private readonly string _temp;
    private bool _committed;

    /// <param name="target">The file to replace, symbolic links already followed (see <see cref="ReportOutput"/>).</param>
    public AtomicFile(string target)
    {
        _target = Path.GetFullPath(target);
        var dir = Path.GetDirectoryName(_target)!;
        Directory.CreateDirectory(dir);
        _temp = Path.Combine(dir, $".{Path.GetFileName(_target)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        TempFiles.Register(_temp);
        try
        {
            Stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            // A report replacing a 0640 file must not become world-readable (or lose its execute bit...).
            if (!OperatingSystem.IsWindows() && File.Exists(_target))
                File.SetUnixFileMode(Stream.SafeFileHandle, File.GetUnixFileMode(_target));
        }
        catch
        {
            Stream?.Dispose();
            TempFiles.Delete(_temp);
            throw;
        }
    }

    public FileStream Stream { get; } = null!;

    /// <summary>The temporary file (for tests and messages).</summary>
    public string TempPath => _temp;

    public void Commit()
    {
        Stream.Flush(flushToDisk: true);
        Stream.Dispose();
        // After SIGINT/SIGTERM nothing is renamed into place, however far the report got.
        if (TempFiles.Abandoned) throw new OperationCanceledException("interrupted");
        File.Move(_temp, _target, overwrite: true); // rename(2): atomic on one file system
        TempFiles.Forget(_temp);
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed) return;
        Stream.Dispose();
        TempFiles.Delete(_temp);
    }
}

/// <summary>
/// Every temporary file DriverAudit has open, so an interrupted run (SIGINT, SIGTERM) can remove them all
/// even when the scan cannot unwind in time. Once <see cref="Abandon"/> ran, no report is committed.
/// </summary>
internal static class TempFiles
{
    private static readonly ConcurrentDictionary<string, byte> Live = new(StringComparer.Ordinal);
    private static volatile bool _abandoned;

    public static bool Abandoned => _abandoned;

    public static void Register(string path) => Live[path] = 0;

    public static void Forget(string path) => Live.TryRemove(path, out _);

    public static void Delete(string path)
    {
        Forget(path);
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Deletes every registered temporary (open ones too: on Unix the writer keeps an unlinked file) and blocks commits.</summary>
    public static void Abandon()
    {
        _abandoned = true;
        foreach (var path in Live.Keys) Delete(path);
    }

    /// <summary>A new temporary file in the system temp folder, registered, deleted when closed.</summary>
    public static FileStream CreateScratch()
    {
        var path = Path.Combine(Path.GetTempPath(), $"driveraudit-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        Register(path);
        try
        {
            return new ScratchStream(path);
        }
        catch
        {
            Delete(path);
            throw;
        }
    }

    private sealed class ScratchStream : FileStream
    {
        private readonly string _path;

        public ScratchStream(string path)
            : base(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose) => _path = path;

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            Forget(_path);
        }
    }
}
