using DriverAudit.Rules.Facts;

namespace DriverAudit.Scanner.Code;

/// <summary>An argument value: a proven constant, or unknown. Never a guess.</summary>
internal readonly record struct ArgValue(bool IsKnown, ulong Value)
{
    public static ArgValue Unknown => default;
    public static ArgValue Known(ulong value) => new(true, value);

    public override string ToString() => IsKnown ? $"0x{Value:x}" : "unknown";
}

/// <summary>How a call site reaches the imported function.</summary>
[Flags]
internal enum CallSiteShape
{
    /// <summary><c>call [slot]</c> (x64 rip-relative, x86 absolute).</summary>
    Direct = 0,
    /// <summary><c>mov reg, [slot]</c> … <c>call reg</c>.</summary>
    ViaRegister = 1,
    /// <summary><c>call thunk</c> where the thunk is <c>jmp [slot]</c>.</summary>
    ViaThunk = 2,
    /// <summary>A jump, not a call: the caller's frame is reused (tail call).</summary>
    TailCall = 4,
}

/// <summary>One place in the code that transfers control to an imported function.</summary>
/// <param name="Api">The import called.</param>
/// <param name="SiteRva">RVA of the call (or tail-call jump) instruction.</param>
/// <param name="FunctionStartRva">Start of the containing function when the image says (x64 .pdata).</param>
/// <param name="Args">Arguments 0..3 as the callee sees them (logical arguments: a 64-bit x86 argument spans two pushes).</param>
internal sealed record CallSite(ImportFact Api, uint SiteRva, uint? FunctionStartRva, IReadOnlyList<ArgValue> Args, CallSiteShape Shape)
{
    public const int TrackedArgs = DriverAudit.Rules.Facts.CallFact.TrackedArgs;

    public ArgValue Arg(int index) => (uint)index < (uint)Args.Count ? Args[index] : ArgValue.Unknown;
}

/// <summary>A privileged or dangerous instruction found in executable code.</summary>
/// <param name="Mnemonic">Lower-case mnemonic: wrmsr, rdmsr, in, out, ins*, outs*, mov.</param>
/// <param name="ControlRegister">For <c>mov crN, reg</c>: "cr0", "cr3", "cr4" or "cr8"; otherwise null.</param>
/// <param name="FunctionRva">Start of the function the instruction belongs to (.pdata or descent); null from the linear fallback.</param>
internal sealed record InstructionHit(uint Rva, string Mnemonic, string? ControlRegister, uint? FunctionRva = null)
{
    public override string ToString() => ControlRegister is null ? $"0x{Rva:x} {Mnemonic}" : $"0x{Rva:x} mov {ControlRegister}, reg";
}
