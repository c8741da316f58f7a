using System.CommandLine;

namespace DriverAudit.Scanner.Cli;

/// <summary>The command line: <c>driveraudit scan|inspect|rules ...</c>. Usage errors exit with 2.</summary>
internal static class DriverAuditCli
{
    public static int Run(string[] args, CliIo io)
    {
        var root = new RootCommand(
            "DriverAudit audits Windows kernel-driver binaries (.sys files and the drivers inside kernel crash dumps) " +
            "against YAML rules and reports SARIF 2.1.0 for GitHub code scanning.\n\n" +
            "Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 usage or rule error; " +
            "3 some inputs could not be analysed and --fail-on-error was given.");
        root.Subcommands.Add(ScanCommand.Create(io));
        root.Subcommands.Add(InspectCommand.Create(io));
        root.Subcommands.Add(InventoryCommand.Create(io));
        root.Subcommands.Add(MergeCommand.Create(io));
        root.Subcommands.Add(ReportCommand.Create(io));
        root.Subcommands.Add(TagsCommand.Create(io));
        root.Subcommands.Add(RulesCommand.Create(io));
        root.Subcommands.Add(CompletionsCommand.Create(io, root));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) io.Error.WriteLine($"driveraudit: {error.Message}");
            io.Error.WriteLine("Run 'driveraudit --help' for usage.");
            return Engine.ExitCodes.UsageOrConfiguration;
        }
        var config = new InvocationConfiguration { Output = io.Out, Error = io.Error, EnableDefaultExceptionHandler = false };
        return parse.Invoke(config);
    }
}
