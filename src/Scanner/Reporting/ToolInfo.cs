using System.Reflection;

namespace DriverAudit.Scanner.Reporting;

/// <summary>The tool's identity as reported in SARIF and --version.</summary>
internal static class ToolInfo
{
    public const string Name = "DriverAudit";
    public const string InformationUri = "https://github.com/driveraudit/driveraudit";

    public static string SemanticVersion { get; } =
        (typeof(ToolInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0")
            .Split('+')[0];
}
