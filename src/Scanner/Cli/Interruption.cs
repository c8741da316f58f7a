using System.Runtime.InteropServices;
using DriverAudit.Scanner.Reporting;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// SIGINT and SIGTERM during a scan: stop, remove every temporary file, leave the existing output untouched
/// (nothing is renamed into place after the signal), exit 130 or 143 as shells expect (128 + signal number).
/// The scan unwinds at its next input; one stuck in a long read gets a short grace period, then the
/// process exits from the handler after the same cleanup.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private readonly CancellationTokenSource _cancel = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly TextWriter _error;
    private int _exitCode;

    private Interruption(TextWriter error) => _error = error;

    /// <summary>The exit code to return (130/143), or 0 when no signal arrived.</summary>
    public int ExitCode => Volatile.Read(ref _exitCode);

    public CancellationToken Token => _cancel.Token;

    /// <param name="handleSignals">False for in-process runs (tests): the host's signals are its own.</param>
    public static Interruption Install(bool handleSignals, TextWriter error)
    {
        var interruption = new Interruption(error);
        if (!handleSignals) return interruption;
        foreach (var (signal, code) in new[] { (PosixSignal.SIGINT, Engine.ExitCodes.Interrupted), (PosixSignal.SIGTERM, Engine.ExitCodes.Terminated) })
        {
            try
            {
                interruption._registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
                {
                    ctx.Cancel = true; // we exit ourselves, after cleaning up
                    interruption.Interrupt(code);
                }));
            }
            catch (PlatformNotSupportedException) { }
        }
        return interruption;
    }

    /// <summary>What a signal does (public so the behaviour can be driven without sending one).</summary>
    public void Interrupt(int exitCode)
    {
        if (Interlocked.CompareExchange(ref _exitCode, exitCode, 0) != 0)
        {
            // A second signal: the user insists.
            TempFiles.Abandon();
            Environment.Exit(exitCode);
        }
        TempFiles.Abandon();
        _cancel.Cancel();
        _ = Task.Delay(Grace).ContinueWith(_ =>
        {
            TempFiles.Abandon();
            try { _error.WriteLine("driveraudit: interrupted; no report was written."); _error.Flush(); } catch (IOException) { }
            Environment.Exit(exitCode);
        }, TaskScheduler.Default);
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cancel.Dispose();
    }
}
