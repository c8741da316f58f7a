namespace DriverAudit.Rules.Facts;

/// <summary>
/// The names <see cref="InstructionFact"/> carries, defined once: the scanner produces exactly these and the rule
/// compiler accepts exactly these (<c>instruction: {mnemonic: ...}</c>, <c>{mov-to: ...}</c>).
/// </summary>
public static class InstructionNames
{
    public const string Wrmsr = "wrmsr", Rdmsr = "rdmsr", In = "in", Out = "out";
    public const string Insb = "insb", Insw = "insw", Insd = "insd", Outsb = "outsb", Outsw = "outsw", Outsd = "outsd";
    /// <summary><c>mov crN, reg</c>: the fact carries the control register.</summary>
    public const string Mov = "mov";
    /// <summary>ARM64 privileged system-register write and read: the fact carries the register.</summary>
    public const string Msr = "msr", Mrs = "mrs";

    /// <summary>Mnemonics a rule may name: everything the scanner reports except <c>mov</c> (named by <c>mov-to</c>).</summary>
    public static readonly string[] Mnemonics = [Wrmsr, Rdmsr, In, Out, Insb, Insw, Insd, Outsb, Outsw, Outsd, Msr, Mrs];

    /// <summary>The x86 control registers whose writes (<c>mov crN, reg</c>) the scanner reports.</summary>
    public static readonly string[] X86ControlRegisters = ["cr0", "cr2", "cr3", "cr4", "cr8"];

    /// <summary>
    /// ARM64 system registers (and PSTATE fields) that play CR0/CR3/CR4's part: translation, exception vectors,
    /// PAN/UAO. The scanner reports every privileged register an msr writes; <c>mov-to</c> names these.
    /// </summary>
    public static readonly string[] Arm64ControlRegisters =
        ["sctlr_el1", "ttbr0_el1", "ttbr1_el1", "tcr_el1", "vbar_el1", "pan", "uao", "sctlr_el2", "hcr_el2", "vbar_el2"];

    /// <summary>Registers <c>mov-to</c> accepts: x86 control registers, then the ARM64 ones.</summary>
    public static readonly string[] ControlRegisters = [.. X86ControlRegisters, .. Arm64ControlRegisters];

    /// <summary>The x86 spelling of control register <paramref name="n"/> ("cr0"), or null when the scanner does not report it.</summary>
    public static string? ControlRegister(int n) => n switch { 0 => "cr0", 2 => "cr2", 3 => "cr3", 4 => "cr4", 8 => "cr8", _ => null };

    /// <summary>Port I/O and MSR instructions: x86 only (ARM64 has neither; devices are memory-mapped).</summary>
    public static readonly IReadOnlySet<string> X86Only =
        new HashSet<string>([Wrmsr, Rdmsr, In, Out, Insb, Insw, Insd, Outsb, Outsw, Outsd], StringComparer.Ordinal);
}
