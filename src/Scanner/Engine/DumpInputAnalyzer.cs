using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// Analyses a kernel crash dump: artifact 0 is the dump, then one nested artifact per loaded module with the
/// same rules as for files, imports coming from the resolved IAT. Modules are analysed one after another and
/// nothing of one module is kept once its report is built (only the dump-wide export tables), so memory
/// follows the module pages read, not the dump's size. The dump is never hashed: it can be tens of GB.
/// </summary>
/// <param name="collectInventory">Describe each analysed module (<see cref="ArtifactReport.Image"/>).</param>
/// <param name="options">The per-image time budget (each module is an image); null: the defaults.</param>
internal sealed class DumpInputAnalyzer(RuleSet rules, bool collectInventory = false, ScanOptions? options = null)
{
    private readonly ScanOptions _options = options ?? new ScanOptions(1, null, false, false);

    /// <summary>
    /// Notifications kept per dump (dump and modules together, in artifact order); the rest are counted in one
    /// last notification. A damaged dump can otherwise produce one per IAT slot of every module.
    /// </summary>
    public const int MaxNotificationsPerDump = 500;

    /// <summary>The report of an opened dump (<see cref="OpenedInput.Dump"/> not null); the caller disposes the input.</summary>
    public InputReport Analyze(OpenedInput input)
    {
        var file = input.Item;
        var dump = input.Dump!;
        var artifacts = new List<ArtifactReport>(dump.Modules.Count + 1) { null! };
        var dumpNotes = new List<Notification>();
        if (dump.IsTriage)
        {
            var captured = dump.Modules.Count(m => m.ImageAvailable);
            dumpNotes.Add(new Notification(NotificationCodes.DumpImagesUnavailable, NotificationLevel.Note,
                $"'{file.DisplayPath}' is a triage minidump: it lists {dump.Modules.Count} modules and {dump.UnloadedDrivers.Count} unloaded drivers; " +
                $"its data blocks hold part of {captured} module image(s) (rules ran on what they hold), the other modules got only the rules on name and path.", file.Uri));
        }
        // A damaged module list can name one module twice; SARIF artifacts must be unique: the opener lists each once.
        var budget = new NotificationBudget(MaxNotificationsPerDump);
        foreach (var target in input.Modules)
        {
            var module = target.Module;
            var report = module.ImageAvailable ? AnalyzeModuleGuarded(file, dump, target) : ListedOnly(file, module, "not captured");
            artifacts.Add(report with { Notifications = budget.Take(report.Notifications) });
        }
        var seenUnloaded = new HashSet<(string Name, ulong Base, ulong Size)>();
        foreach (var unloaded in dump.UnloadedDrivers)
            if (seenUnloaded.Add((unloaded.Name, unloaded.Base, unloaded.Size))) artifacts.Add(Unloaded(file, unloaded));
        if (input.DuplicateModules is var duplicates and > 0)
            dumpNotes.Add(new Notification(NotificationCodes.MalformedDump, NotificationLevel.Warning,
                $"'{file.DisplayPath}': the loaded-module list names {duplicates} module(s) a second time (same name, base, size and path); each was analysed once.", file.Uri));
        // Dump-level diagnostics last: lazily built indexes (bitmap, page tables) may add to them while modules are read.
        foreach (var d in dump.Diagnostics)
            dumpNotes.Add(new Notification(NotificationCodes.MalformedDump, NotificationLevel.Warning, $"'{file.DisplayPath}': {d}", file.Uri));
        var kept = budget.Take(dumpNotes);
        if (budget.Dropped > 0)
            kept = [.. kept, new Notification(NotificationCodes.NotificationsTruncated, NotificationLevel.Warning,
                $"'{file.DisplayPath}': {budget.Dropped:N0} more notification(s) about this dump were left out (at most {MaxNotificationsPerDump} are reported per dump).", file.Uri)];
        // Analyzed stays false for the dump itself: rules run on its module images, which are counted instead.
        artifacts[0] = new ArtifactReport { Uri = file.Uri, Length = dump.File.Length, Notifications = kept };
        return new InputReport(artifacts, []);
    }

    private static ArtifactReport Listed(InputItem file, DumpModule module) => new()
    {
        Uri = file.Uri,
        Length = module.Size,
        ParentLocalIndex = 0,
        ModuleName = module.Name,
        ModuleBase = module.Base,
        ModulePath = module.FullPath,
    };

    /// <summary>Keeps the first notifications up to a total, counting the rest.</summary>
    private sealed class NotificationBudget(int max)
    {
        private int _left = max;
        public int Dropped { get; private set; }

        public IReadOnlyList<Notification> Take(IReadOnlyList<Notification> notes)
        {
            if (notes.Count <= _left) { _left -= notes.Count; return notes; }
            var kept = notes.Take(_left).ToList();
            Dropped += notes.Count - _left;
            _left = 0;
            return kept;
        }
    }

    /// <summary>One module's defect (ours, or a structure we did not foresee) costs that module only, not the dump's other modules.</summary>
    private ArtifactReport AnalyzeModuleGuarded(InputItem file, KernelDump dump, DumpModuleTarget target)
    {
        var module = target.Module;
        try
        {
            return AnalyzeModule(file, dump, target);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Listed(file, module) with
            {
                Notifications = [new Notification(NotificationCodes.InternalError, NotificationLevel.Error,
                    $"Internal error while analysing '{target.DisplayPath}' (base 0x{module.Base:x}): {e.GetType().Name}: {e.Message}. The dump's other modules were analysed. Please report this with the dump.", file.Uri)],
            };
        }
    }

    /// <summary>A module without a readable image: only the rules on its name and path can judge it.</summary>
    private ArtifactReport ListedOnly(InputItem file, DumpModule module, string capture) => Listed(file, module) with
    {
        Capture = capture,
        Findings = InputAnalyzer.Findings(rules.EvaluateModuleOnly(DumpListedModuleFacts.Of(module, file.DisplayPath)), file.Uri, module.Name),
    };

    /// <summary>
    /// An unloaded driver: a child artifact named "name (unloaded)" so its findings never share a fingerprint
    /// with a loaded module of the same name.
    /// </summary>
    private ArtifactReport Unloaded(InputItem file, UnloadedDriver driver)
    {
        var name = $"{driver.Name} (unloaded)";
        return new ArtifactReport
        {
            Uri = file.Uri,
            Length = (long)Math.Min(driver.Size, long.MaxValue),
            ParentLocalIndex = 0,
            ModuleName = name,
            ModuleBase = driver.Base,
            ModulePath = driver.Name,
            Capture = "unloaded",
            Findings = InputAnalyzer.Findings(rules.EvaluateModuleOnly(DumpListedModuleFacts.Of(driver, file.DisplayPath)), file.Uri, name),
        };
    }

    private ArtifactReport AnalyzeModule(InputItem file, KernelDump dump, DumpModuleTarget target)
    {
        var deadline = new ImageDeadline(_options); // each module is an image with its own budget
        var module = target.Module;
        var where = target.DisplayPath;
        var open = target.OpenImage();
        if (open.Image is not PeImage image)
        {
            var listed = ListedOnly(file, module, dump.IsTriage ? "not captured" : "headers missing");
            // A triage dump's blocks often hold a piece of a module but not its headers: that is normal, not a warning.
            return dump.IsTriage ? listed : listed with
            {
                Notifications = [new Notification(NotificationCodes.ModuleNotAnalysable, NotificationLevel.Warning,
                    $"'{where}' (base 0x{module.Base:x}) was not analysed, only its name and path: {open.Reason}", file.Uri)],
            };
        }

        var facts = target.Facts(image);
        var notEvaluated = new List<DriverAudit.Rules.Engine.Rule>();
        var stopped = new List<DriverAudit.Rules.Engine.Rule>();
        var findings = InputAnalyzer.CapFindings(InputAnalyzer.Findings(rules.Evaluate(facts, notEvaluated, () => deadline.Expired, stopped), file.Uri, module.Name), where, file.Uri, out var capped);
        var notes = new List<Notification>(NotificationCodes.NotEvaluated(notEvaluated, where, facts.CodeNotEvaluated ?? facts.AbsentInstructions?.Reason, file.Uri));
        if (capped is not null) notes.Add(capped);
        if (deadline.Notice(stopped, where, file.Uri) is { } late) notes.Add(late);
        foreach (var d in facts.Iat!.Diagnostics) // a dump module's imports always come from its resolved IAT
        {
            // A triage dump copies a module's headers, rarely its IAT: a missing IAT page there is expected.
            var level = dump.IsTriage && d.Code == DumpDiagnosticCodes.IatUnreadable ? NotificationLevel.Note : NotificationLevel.Warning;
            notes.Add(new Notification(NotificationCodes.UnresolvedImport, level, $"'{file.DisplayPath}': {d}", file.Uri));
        }
        // Missing pages are normal in a dump (paged out, discarded INIT): what the parser could not read is a note.
        foreach (var d in image.Diagnostics)
            notes.Add(new Notification(NotificationCodes.MalformedTable, NotificationLevel.Note, $"'{where}': {d.Message}", file.Uri));
        return Listed(file, module) with
        {
            Analyzed = true,
            Findings = findings,
            Notifications = notes,
            Capture = dump.IsTriage ? "partially captured" : null,
            Image = collectInventory ? Fleet.ImageRecord.Describe(image, new Signing.ImageSigning(image)) : null,
        };
    }
}
