/// A token id, as in llama.cpp (`llama_token`): one type from the tokenizer through the model,
/// the sampler and the public API.
public typealias TokenID = Int32
