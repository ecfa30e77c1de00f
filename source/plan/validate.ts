import type { Plan } from './types.js';

/**
 * Problems that make a plan unsafe or unrunnable (empty: fine). The engine refuses such a plan
 * (exit 9) before it takes a lock; the `plan` dry run reports them too.
 */
export function validatePlan(plan: Plan): string[] {
  const problems: string[] = [];
  // A plan read from JSON may lack the field: it is then as unsafe as an empty one.
  if (!Array.isArray(plan.lockKeys) || plan.lockKeys.length === 0) problems.push('the plan names no target to lock (lockKeys is empty)');
  const seen = new Set<string>();
  for (const step of plan.steps) {
    if (seen.has(step.id)) problems.push(`step id "${step.id}" appears twice`);
    for (const dep of step.dependsOn) {
      if (!seen.has(dep)) {
        problems.push(
          plan.steps.some((s) => s.id === dep)
            ? `step "${step.id}" depends on "${dep}", which comes after it`
            : `step "${step.id}" depends on "${dep}", which is not in the plan`,
        );
      }
    }
    seen.add(step.id);
    // The copy may be taken by an earlier step of the same component (dump first, then drop).
    const copied =
      step.safetyCopy ??
      plan.steps.slice(0, plan.steps.indexOf(step)).find((s) => s.safetyCopy && s.component !== undefined && s.component === step.component)
        ?.safetyCopy;
    if (step.destructive && !copied) {
      problems.push(
        `step "${step.id}" (${step.title}) destroys ${step.destroys ?? 'data'} but plans no safety copy and no recorded decision to keep none`,
      );
    }
  }
  return problems;
}
