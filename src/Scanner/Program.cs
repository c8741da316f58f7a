using DriverAudit.Scanner.Cli;

namespace DriverAudit.Scanner;

internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            var io = CliIo.FromConsole();
            try
            {
                return DriverAuditCli.Run(args, io);
            }
            finally
            {
                io.Flush();
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Last line of defence: one sentence, no stack trace, a distinct exit code.
            Console.Error.WriteLine($"driveraudit: internal error: {e.GetType().Name}: {e.Message}");
            return 2;
        }
    }
}
