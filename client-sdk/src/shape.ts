/** One procedure as the SDK knows it: its kind, the input it takes and the output it returns. */
export interface ProcedureShape<TType extends 'query' | 'mutation' | 'subscription', TInput, TOutput> {
  procedure: TType;
  input: TInput;
  output: TOutput;
}
