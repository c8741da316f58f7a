using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Reporting.Sarif;
using DriverAudit.Scanner.RulePack;
using Spectre.Console;
using Rule = DriverAudit.Rules.Engine.Rule;

namespace DriverAudit.Scanner.Cli;

/// <summary><c>driveraudit rules list|show|validate|test|docs</c>: the rule pack for people, CI and docs.</summary>
internal static class RulesCommand
{
    public static Command Create(CliIo io)
    {
        var command = new Command("rules", "List, show, validate and test rules; generate their documentation.");
        command.Subcommands.Add(List(io));
        command.Subcommands.Add(Show(io));
        command.Subcommands.Add(Validate(io));
        command.Subcommands.Add(Test(io));
        command.Subcommands.Add(Docs(io));
        return command;
    }

    private static Option<string[]> RulesOption() => new("--rules") { Description = "Extra rule file or folder of *.yaml rules (repeatable)." };

    private static Option<bool> NoDefaultOption() => new("--no-default-rules") { Description = "Leave out the rule pack embedded in driveraudit." };

    /// <summary>The subcommand's settings (<see cref="RulesSettings.From"/>), then <paramref name="run"/>.</summary>
    private static int RunWith(RulesFlags flags, CliIo io, Func<RulesSettings, int> run) =>
        CliInputs.RunWith(RulesSettings.From(flags, io.WorkingDirectory), io, run);

    private static Command List(CliIo io)
    {
        var rules = RulesOption();
        var noDefault = NoDefaultOption();
        var format = CliInputs.FormatOption("text (a table on a terminal) or json.", "text", RulesSettings.Formats);
        var command = new Command("list", "List the rules: the embedded pack plus --rules additions.") { format, rules, noDefault };
        command.SetAction(parse => RunWith(new RulesFlags
        {
            Rules = parse.GetValue(rules) ?? [],
            NoDefaultRules = parse.GetValue(noDefault),
            Format = parse.GetValue(format),
        }, io, settings => RunList(settings, io)));
        return command;
    }

    internal static int RunList(RulesSettings settings, CliIo io)
    {
        var catalog = RuleCatalog.Load(settings.RulePaths, settings.IncludeDefaultRules, io.WorkingDirectory, io.Error);
        if (catalog is null) return ExitCodes.UsageOrConfiguration;
        var list = catalog.Set.Rules;
        if (settings.Json) WriteJson(io, w => RulesJson.WriteList(w, list));
        else if (io.Interactive) WriteTable(list, io);
        else WritePlain(list, io.Out);
        return ExitCodes.Clean;
    }

    private static Command Show(CliIo io)
    {
        var id = new Argument<string>("id") { Description = "Rule id or name (ignoring case)." };
        var rules = RulesOption();
        var noDefault = NoDefaultOption();
        var format = CliInputs.FormatOption("text or json (one object: the rule's metadata, description, help and match as written).", "text", RulesSettings.Formats);
        var command = new Command("show", "Show a rule: metadata, description, help and its match tree as written.") { id, format, rules, noDefault };
        command.SetAction(parse => RunWith(new RulesFlags
        {
            Id = parse.GetValue(id),
            Format = parse.GetValue(format),
            Rules = parse.GetValue(rules) ?? [],
            NoDefaultRules = parse.GetValue(noDefault),
        }, io, settings => RunShow(settings, io)));
        return command;
    }

    internal static int RunShow(RulesSettings settings, CliIo io)
    {
        var catalog = RuleCatalog.Load(settings.RulePaths, settings.IncludeDefaultRules, io.WorkingDirectory, io.Error);
        if (catalog is null) return ExitCodes.UsageOrConfiguration;
        var wanted = settings.Id;
        var rule = catalog.Set.Rules.FirstOrDefault(r =>
            string.Equals(r.Id, wanted, StringComparison.OrdinalIgnoreCase) || string.Equals(r.Name, wanted, StringComparison.OrdinalIgnoreCase));
        if (rule is null)
        {
            io.Error.WriteLine($"driveraudit: no rule '{wanted}' (see 'driveraudit rules list').");
            return ExitCodes.UsageOrConfiguration;
        }
        if (settings.Json) WriteJson(io, w => RulesJson.WriteRule(w, rule, catalog.MatchSource(rule)));
        else WriteRule(rule, catalog.MatchSource(rule), io.Out);
        return ExitCodes.Clean;
    }

    private static Command Validate(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Rule files or folders.");
        var noDefault = NoDefaultOption();
        var format = CliInputs.FormatOption("text or json (one object: valid, the rules checked, errors and warnings with file, line and column).", "text", RulesSettings.Formats);
        var command = new Command("validate",
            "Check rule files: syntax, keys, features, patterns, ids and references (to each other and to the embedded pack). " +
            "Exit 0 when valid, 2 with file:line:column errors otherwise.") { paths, format, noDefault };
        command.SetAction(parse => RunWith(new RulesFlags
        {
            Rules = parse.GetValue(paths) ?? [],
            NoDefaultRules = parse.GetValue(noDefault),
            Format = parse.GetValue(format),
        }, io, settings => RunValidate(settings, io)));
        return command;
    }

    internal static int RunValidate(RulesSettings settings, CliIo io)
    {
        var errors = new List<RuleError>();
        var catalog = RuleCatalog.LoadFocused(settings.RulePaths, settings.IncludeDefaultRules, io.WorkingDirectory, io.Error, errors);
        if (settings.Json) WriteJson(io, w => RulesJson.WriteValidation(w, catalog, errors));
        if (catalog is null) return ExitCodes.UsageOrConfiguration;
        if (!settings.Json) io.Out.WriteLine($"{catalog.FocusRules.Count()} rule(s) valid.");
        return ExitCodes.Clean;
    }

    private static Command Test(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Rule files or folders.");
        var noDefault = NoDefaultOption();
        var format = CliInputs.FormatOption("text or json (one object: counts, failures, rules without examples, rule errors).", "text", RulesSettings.Formats);
        var command = new Command("test",
            "Run each rule's examples (match and no-match files, relative to the rule file's repository or the current folder) " +
            "through the analyzer. Exit 1 when an example does not behave, 2 on rule errors.") { paths, format, noDefault };
        command.SetAction(parse => RunWith(new RulesFlags
        {
            Rules = parse.GetValue(paths) ?? [],
            NoDefaultRules = parse.GetValue(noDefault),
            Format = parse.GetValue(format),
        }, io, settings => RunTest(settings, io)));
        return command;
    }

    internal static int RunTest(RulesSettings settings, CliIo io)
    {
        var errors = new List<RuleError>();
        var catalog = RuleCatalog.LoadFocused(settings.RulePaths, settings.IncludeDefaultRules, io.WorkingDirectory, io.Error, errors);
        var results = catalog is null ? null : RuleExamples.Run(catalog, io.WorkingDirectory);
        if (settings.Json) WriteJson(io, w => RulesJson.WriteTest(w, results, errors));
        else if (results is not null) RuleExamples.Print(results, io.Out);
        return results is null ? ExitCodes.UsageOrConfiguration : results.Failures.Count > 0 ? ExitCodes.Findings : ExitCodes.Clean;
    }

    private static Command Docs(CliIo io)
    {
        var output = new Option<string>("--out") { Description = "Folder for one <id>.md page per rule.", Required = true };
        var readme = new Option<string?>("--readme") { Description = $"Also write the rule table into this file, at {RuleDocs.ReadmeMarker} or over the table generated before." };
        var rules = RulesOption();
        var noDefault = NoDefaultOption();
        var command = new Command("docs", "Generate the rule documentation pages (deterministic; commit them).") { output, readme, rules, noDefault };
        command.SetAction(parse =>
        {
            var catalog = RuleCatalog.Load(parse.GetValue(rules) ?? [], !parse.GetValue(noDefault), io.WorkingDirectory, io.Error);
            if (catalog is null) return ExitCodes.UsageOrConfiguration;
            var outDir = Path.GetFullPath(Path.Combine(io.WorkingDirectory, parse.GetValue(output)!));
            string? readmePath = parse.GetValue(readme) is { } r ? Path.GetFullPath(Path.Combine(io.WorkingDirectory, r)) : null;
            string? newReadme = null;
            if (readmePath is not null)
            {
                if (!File.Exists(readmePath))
                {
                    io.Error.WriteLine($"driveraudit: no such file '{readmePath}'.");
                    return ExitCodes.UsageOrConfiguration;
                }
                var link = Path.GetRelativePath(Path.GetDirectoryName(readmePath)!, outDir).Replace(Path.DirectorySeparatorChar, '/');
                newReadme = RuleDocs.ReplaceTable(File.ReadAllText(readmePath), RuleDocs.Table(catalog.Set.Rules, link));
                if (newReadme is null)
                {
                    io.Error.WriteLine($"driveraudit: {readmePath} has neither {RuleDocs.ReadmeMarker} nor a {RuleDocs.ReadmeBegin} … {RuleDocs.ReadmeEnd} block.");
                    return ExitCodes.UsageOrConfiguration;
                }
            }
            try
            {
                var pages = RuleDocs.Pages(catalog);
                RuleDocs.Write(outDir, pages);
                if (readmePath is not null && newReadme != File.ReadAllText(readmePath)) File.WriteAllText(readmePath, newReadme);
                io.Out.WriteLine($"{pages.Count} page(s) in {outDir}{(readmePath is null ? "" : $"; rule table in {readmePath}")}.");
                return ExitCodes.Clean;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                io.Error.WriteLine($"driveraudit: cannot write the documentation: {e.Message}");
                return ExitCodes.UsageOrConfiguration;
            }
        });
        return command;
    }

    private static void WritePlain(IReadOnlyList<Rule> rules, TextWriter o)
    {
        string[] header = ["ID", "NAME", "LEVEL", "PRECISION", "SEVERITY", "TITLE"];
        var rows = rules.Select(r => new[] { r.Id, r.Name, SarifRules.LevelName(r.Level), r.Precision, RulesJson.Severity(r), r.Title }).ToList();
        var widths = Enumerable.Range(0, header.Length - 1).Select(i => rows.Select(x => x[i].Length).Append(header[i].Length).Max()).ToArray();
        foreach (var row in rows.Prepend(header))
            o.WriteLine(string.Join("  ", row.Select((cell, i) => i < widths.Length ? cell.PadRight(widths[i]) : cell)));
    }

    private static void WriteTable(IReadOnlyList<Rule> rules, CliIo io)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(io.Out) });
        var table = new Table().AddColumns("ID", "Name", "Level", "Precision", "Severity", "Title");
        foreach (var r in rules)
            table.AddRow(Markup.Escape(r.Id), Markup.Escape(r.Name), Markup.Escape(SarifRules.LevelName(r.Level)), Markup.Escape(r.Precision), RulesJson.Severity(r), Markup.Escape(r.Title));
        console.Write(table);
    }

    /// <summary>One indented JSON document on stdout, ended by a newline (every rules subcommand's --format json).</summary>
    private static void WriteJson(CliIo io, Action<Utf8JsonWriter> write)
    {
        using (var w = new Utf8JsonWriter(io.StdoutStream, new JsonWriterOptions { Indented = true }))
            write(w);
        io.StdoutStream.WriteByte((byte)'\n');
        io.StdoutStream.Flush();
    }

    private static void WriteRule(Rule r, string? matchSource, TextWriter o)
    {
        o.WriteLine($"{r.Id} {r.Name}: {r.Title}");
        o.WriteLine($"  level:             {SarifRules.LevelName(r.Level)}");
        o.WriteLine($"  precision:         {r.Precision}");
        o.WriteLine($"  security-severity: {RulesJson.Severity(r)}");
        o.WriteLine($"  tags:              {(r.Tags.Count > 0 ? string.Join(", ", r.Tags) : "-")}");
        o.WriteLine($"  cwe:               {(r.Cwe.Count > 0 ? string.Join(", ", r.Cwe.Select(c => "CWE-" + c.ToString(CultureInfo.InvariantCulture))) : "-")}");
        o.WriteLine($"  report:            {(r.Report == RuleReport.PerImage ? "per-image" : "per-anchor")}");
        o.WriteLine($"  message:           {r.MessageTemplate}");
        o.WriteLine($"  source:            {r.SourcePath}");
        if (SarifRules.HelpUri(r) is { } uri) o.WriteLine($"  documentation:     {uri}");
        foreach (var reference in r.References) o.WriteLine($"  reference:         {reference}");
        foreach (var e in r.MatchExamples) o.WriteLine($"  example (match):   {e}");
        foreach (var e in r.NoMatchExamples) o.WriteLine($"  example (no-match): {e}");
        o.WriteLine();
        o.WriteLine("Description:");
        o.WriteLine(r.Description.Trim());
        o.WriteLine();
        o.WriteLine("Help:");
        o.WriteLine(r.Help.Trim());
        o.WriteLine();
        o.WriteLine("Match:");
        o.WriteLine(matchSource ?? "(not available)");
    }
}
