namespace DriverAudit.Scanner.Engine;

/// <summary>The exit codes DriverAudit promises (semgrep's convention). Every command returns one of these; none writes a literal.</summary>
internal static class ExitCodes
{
    public const int Clean = 0;
    public const int Findings = 1;
    public const int UsageOrConfiguration = 2;
    public const int InputErrors = 3;
    /// <summary>SIGINT (Ctrl-C): 128 + 2, as shells expect.</summary>
    public const int Interrupted = 130;
    /// <summary>SIGTERM: 128 + 15.</summary>
    public const int Terminated = 143;

    /// <summary>
    /// inspect, tags and inventory: 3 when some input could not be analysed, else <paramref name="otherwise"/>. scan gates
    /// the same inputs with --fail-on-error (<see cref="ScanOptions.FailOnInputError"/>), and without it only when no
    /// image at all could be analysed, so its default gates findings.
    /// </summary>
    public static int ForInputs(int failed, int otherwise = Clean) => failed > 0 ? InputErrors : otherwise;
}
